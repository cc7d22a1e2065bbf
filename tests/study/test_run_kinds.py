"""A new run kind is one module plus one `register` call: the toy kind in `toy_run_kind.py` is
validated, executed, stored, read back typed and reported without touching quantscope."""

import pytest
from study import toy_run_kind

from quantscope.report import load_results, report_tables
from quantscope.study import load_config, run_study
from quantscope.study.runs import RUN_KINDS, register

STUDY = {
    "name": "toy",
    "dataset": {"name": "digits"},
    "model": {"name": "digits-cnn"},
    "train": {"epochs": 2, "batch_size": 64},
    "runs": [{"name": "w", "kind": "widths", "bits": [3, 6, 10]}],
}


@pytest.fixture
def widths_kind():
    register(toy_run_kind.KIND)
    yield toy_run_kind.KIND
    del RUN_KINDS["widths"]


def test_an_unregistered_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown run kind 'widths'"):
        load_config(STUDY)


def test_a_registered_kind_validates_runs_stores_and_reports(widths_kind, tmp_path):
    with pytest.raises(ValueError, match="runs.0.bits: List should have at least 1 item"):
        load_config({**STUDY, "runs": [{"name": "w", "kind": "widths", "bits": []}]})
    done = run_study(STUDY, tmp_path, progress=False, log=lambda m: None)
    results = load_results(tmp_path)
    (run,) = results.runs
    assert isinstance(run.summary, toy_run_kind.WidthsSummary) and run.kind == "widths"
    assert [p["labels"]["bits"] for p in run.points] == [3, 6, 10]
    assert run.summary.narrowest in (6, 10)  # 3 bits (1 integer bit with sign) cannot keep 99%
    (table,) = [t for t in report_tables(results) if t.title == "w: widths"]
    assert [r[0] for r in table.rows] == ["3", "6", "10"]
    assert "w: widths" in done.report.read_text()


def test_a_kind_name_cannot_be_registered_twice(widths_kind):
    with pytest.raises(ValueError, match="'widths' is already registered"):
        register(toy_run_kind.KIND)
