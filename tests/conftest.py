import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

# Without a GPU, Triton's interpreter runs the Triton kernels on CPU tensors (test_triton_kernels.py).
# Triton reads this when it is first imported and when kernels are decorated, so it is set before
# any test module imports quantscope.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _study_cache(tmp_path_factory, monkeypatch):
    """Trained float models of test studies go to a per-session cache, not the user's."""
    monkeypatch.setenv("QUANTSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "qs-cache"))


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """The TINY study (tests/studies.py) run once in-process, training its float model in a cache
    of its own (whichever test ran first): (folder, StudyResult)."""
    import copy
    import os

    from studies import TINY

    from quantscope.study import run_study

    before = os.environ.get("QUANTSCOPE_CACHE")
    os.environ["QUANTSCOPE_CACHE"] = str(tmp_path_factory.mktemp("tiny-cache"))
    try:
        out = tmp_path_factory.mktemp("tiny")
        return out, run_study(copy.deepcopy(TINY), out, progress=False, log=lambda m: None)
    finally:
        os.environ["QUANTSCOPE_CACHE"] = before or ""
