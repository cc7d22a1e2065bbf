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


def test_the_bounds_design_options_take_the_smallest_pair_meeting_each_target_per_theorem_and_offset():
    from quantscope.report.results import RunResult
    from quantscope.study.runs.bounds import BoundRow, BoundsSummary, tables

    # offset 0 at B = 2..5 and the rule's +1; Theorem 2 tighter than Theorem 1
    t1 = {2: 0.5, 3: 0.1, 4: 0.009, 5: 0.002}
    rows = [BoundRow(b, b + off, off, t1[b] / (1 + off), t1[b] / (4 * (1 + off)), 0.001 * b, 0.02 + 0.001 * b) for off in (0, 1) for b in t1]
    summary = BoundsSummary(rule_offset=1, targets=(0.01, 0.2), rows=tuple(rows))
    points = [{"labels": {"b_a": r.b_a, "b_w": r.b_w}, "costs": {"full_adders": 1e6 * r.b_a * r.b_w, "representational_bits": 2e6 * r.b_w}}
              for r in rows]
    options = tables(None, RunResult("b", "bounds", summary, points), False)[1]  # type: ignore[arg-type]
    chosen = [(o[0], o[1], o[2], o[6], o[7]) for o in options.rows]
    # Theorem 1 = t1 / (1 + offset), Theorem 2 = a quarter of that; worked by hand:
    assert chosen == [
        ("p_m ≤ 1% by Theorem 1, B_W = B_A", "4", "4", "16.000", "8.000"),              # 0.009
        ("p_m ≤ 1% by Theorem 2, B_W = B_A", "4", "4", "16.000", "8.000"),              # 3 gives 0.025
        ("p_m ≤ 1% by Theorem 1, B_W = B_A +1 (rule)", "4", "5", "20.000", "10.000"),   # 0.0045
        ("p_m ≤ 1% by Theorem 2, B_W = B_A +1 (rule)", "4", "5", "20.000", "10.000"),   # 3 gives 0.0125
        ("p_m ≤ 20% by Theorem 1, B_W = B_A", "3", "3", "9.000", "6.000"),
        ("p_m ≤ 20% by Theorem 2, B_W = B_A", "2", "2", "4.000", "4.000"),              # 0.125
        ("p_m ≤ 20% by Theorem 1, B_W = B_A +1 (rule)", "3", "4", "12.000", "8.000"),   # 2 gives 0.25
        ("p_m ≤ 20% by Theorem 2, B_W = B_A +1 (rule)", "2", "3", "6.000", "6.000"),
    ]
