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


def test_the_ladder_kind_chooses_formats_per_op_and_reports_them(tmp_path):
    study = {**STUDY, "evaluation": {"costs": ["parameter_bits"]},
             "runs": [{"name": "mx", "kind": "ladder", "formats": ["mxfp8<e4m3>", "mxfp4", "int4<group=32,scale=e8m0>"],
                       "tolerances": [0.02, 0.5]}]}
    with pytest.raises(ValueError, match="minimizes 'traffic', which is not in evaluation.costs"):
        load_config({**study, "runs": [{**study["runs"][0], "cost": "traffic"}]})
    run_study(study, tmp_path, progress=False, log=lambda m: None)
    (run,) = load_results(tmp_path).runs
    layers = run.summary.layers
    one = [p for p in run.points if p["labels"]["search"] == "one op"]
    assert [(p["labels"]["layer"], p["labels"]["format"]) for p in one] == [(op, f) for op in layers for f in ("mxfp4", "int4<group=32,scale=e8m0>")]
    greedy = [p for p in run.points if p["labels"]["search"] == "greedy"]
    assert greedy[0]["labels"]["rungs"] == [0] * len(layers)
    loose = run.summary.rows[-1]
    assert loose.cost == min(p["costs"]["parameter_bits"] for p in greedy if p["accuracy"] >= 0.5 * run.summary.float_accuracy)
    tables = {t.title: t for t in report_tables(load_results(tmp_path))}
    assert [r[0] for r in tables["mx: one op at a time"].rows] == layers and "mx: greedy per-op formats" in tables
    from quantscope.report.glossary import explain

    assert all(explain(c) for t in tables.values() for c in t.columns if c), "every column has a glossary entry"
