"""Reports of finished studies: tables with the papers' numbers beside ours, figures, HTML."""

from .html import render, write_report
from .plots import FIGURES
from .results import RunResult, StudyResults, load_results
from .tables import Table, tables

__all__ = ["FIGURES", "RunResult", "StudyResults", "Table", "load_results", "render", "tables", "write_report"]
