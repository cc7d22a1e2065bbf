"""A study from one YAML config: float baseline, evaluated points, costs, searches, report.

The config (`config.StudyConfig`) says which dataset and network, how to get the float model (a
checkpoint, or training cached by a content hash: `float_model`), which runs to do (each run
kind is one module in `runs`), QAT and evaluation settings, and the report. `run_study`
(`runner`) evaluates every point through an executor and writes each to the result store as it
completes (`stored`), so a killed study resumes where it stopped; finished runs keep a summary and
are not redone.
"""

from pathlib import Path

from .config import StudyConfig, load_config
from .float_model import cache_dir
from .runner import StudyResult, run_study
from .runs import RUN_KINDS, RunKind, register

__all__ = ["DEMO_CONFIG", "RUN_KINDS", "RunKind", "StudyConfig", "StudyResult", "cache_dir", "load_config", "register", "run_study"]

#: the embedded demo's config
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "studies" / "demo.yaml"
