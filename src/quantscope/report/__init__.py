"""Reports of finished studies: tables with the papers' numbers beside ours, figures, HTML."""

from .format import FigureSpec, Table
from .html import render, write_report
from .plots import STUDY_FIGURES, figures
from .results import RunResult, StudyResults, load_results
from .tables import report_tables

__all__ = ["FigureSpec", "RunResult", "STUDY_FIGURES", "StudyResults", "Table", "figures", "load_results", "render", "report_tables",
           "write_report"]
