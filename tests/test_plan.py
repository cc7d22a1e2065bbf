"""Precision plans: defaults, overrides and globs, validation, YAML/JSON."""

from __future__ import annotations

import pytest
import torch
from nets import LeNetStyle

import quantscope as qs
from quantscope import FixedPoint, LayerPrecision, PrecisionPlan

NAMES = ["features.0", "features.2", "fc1", "fc2"]
X = torch.rand(2, 1, 28, 28)


def test_product_ops_of_the_lenet_style_network():
    assert [o.name for o in qs.layers(LeNetStyle(), X)] == NAMES


def test_overrides_and_globs_apply_to_exactly_the_layers_they_name():
    plan = (
        PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<16,8>")
        .with_layer("features.*", weights="fixed<4,3>")
        .with_layer("fc2", data="float<4,3>", accumulator="fixed<24,12>")
        .with_layer("fc?", bias="float32")
    )
    got = {n: plan.for_layer(n) for n in NAMES}
    assert got["features.0"] == LayerPrecision("fixed<4,3>", None, "fixed<16,8>")
    assert got["features.2"] == got["features.0"]
    assert got["fc1"] == LayerPrecision("fixed<8,6>", "float32", "fixed<16,8>")
    assert got["fc2"] == LayerPrecision("fixed<8,6>", "float32", "float<4,3>", "fixed<24,12>")
    qmodel = qs.emulate(LeNetStyle(), plan, calibration=X)
    for name in NAMES:
        assert qmodel.ops[name].precision == got[name]


def test_later_overrides_win_and_bias_defaults_to_weights():
    plan = PrecisionPlan.uniform(weights="fixed<8,4>").with_layer("fc*", weights="fixed<6,4>").with_layer("fc1", weights="fixed<5,4>")
    assert plan.for_layer("fc1").weights == FixedPoint(5, 4)
    assert plan.for_layer("fc2").weights == FixedPoint(6, 4)
    assert plan.for_layer("fc2").bias_format == FixedPoint(6, 4)


def test_unknown_op_is_an_error_listing_known_ops():
    plan = PrecisionPlan.uniform().with_layer("fc3", weights="fixed<8,4>")
    message = r"'fc3' matches no op \(did you mean 'fc2'\?\); product ops: features.0, features.2, fc1, fc2; element-wise ops: features.1, features.3, relu"
    with pytest.raises(ValueError, match=message):
        qs.emulate(LeNetStyle(), plan, calibration=X)
    with pytest.raises(ValueError, match=message):  # without a calibration batch: at the first call
        qs.emulate(LeNetStyle(), plan)(X)


def test_bad_fields_and_formats_are_named():
    with pytest.raises(ValueError, match=r"unknown field 'weight' \(did you mean 'weights'\?\)"):
        PrecisionPlan({"weight": "fixed<8,4>"})
    with pytest.raises(ValueError, match=r"overrides\['fc1'\].data: .*fixed<0,1>"):
        PrecisionPlan(overrides={"fc1": {"data": "fixed<0,1>"}})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_load_round_trip_and_equality(tmp_path, suffix):
    plan = (
        PrecisionPlan.uniform(weights="pow2<6>", data="fixed<16,auto>", accumulator="float<5,10>")
        .with_layer("fc*", weights="binary<mean>", bias="float32")
    )
    path = tmp_path / f"plan{suffix}"
    plan.save(path)
    loaded = PrecisionPlan.load(path)
    assert loaded == plan and hash(loaded) == hash(plan)
    assert "default: weights=pow2<6>, data=fixed<16,auto>, accumulator=float<5,10>" in str(plan)
    assert "fc*: weights=binary<mean>, bias=float32" in str(plan)
    assert not list(tmp_path.glob("*.tmp"))


def test_hand_written_yaml_is_accepted(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("default:\n  weights: fixed<8,6>\n  data: fixed<8,4>\noverrides:\n  fc2:\n    weights: float<4,3>\n")
    plan = PrecisionPlan.load(path)
    assert plan.for_layer("fc2").weights == qs.parse_format("float<4,3>")
    path.write_text("weights: fixed<8,6>\n")
    assert PrecisionPlan.load(path) == PrecisionPlan.uniform(weights="fixed<8,6>")
    path.write_text("default:\n  weights: fixd<8,6>\n")
    with pytest.raises(ValueError, match=r"p.yaml: default.weights: .*did you mean 'fixed'"):
        PrecisionPlan.load(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PrecisionPlan.load(tmp_path / "missing.yaml")


def test_plan_strings_work_as_default_and_override_values_and_other_types_are_named():
    plan = PrecisionPlan.from_spec({"default": "fixed<8,auto>", "overrides": {"conv*": "fixed<4,2>, fixed<6,auto>"}})
    assert plan == PrecisionPlan({"weights": "fixed<8,auto>", "data": "fixed<8,auto>"},
                                 {"conv*": {"weights": "fixed<4,2>", "data": "fixed<6,auto>"}})
    with pytest.raises(ValueError, match=r"overrides\['fc'\]: expected a plan string or a mapping of fields, got int"):
        PrecisionPlan.from_spec({"default": "fixed<8,auto>", "overrides": {"fc": 8}})
    with pytest.raises(ValueError, match="one format or 'weights, data'; got 3 parts"):
        PrecisionPlan.from_spec({"default": "fixed<8,4>, fixed<8,4>, fixed<8,4>"})


OPS = ["conv1", "conv2", "fc1", "fc2", "head"]


@pytest.mark.parametrize("plan", [
    # a sensitivity point: per-op data from the reference, then one op's weights (the same name twice)
    PrecisionPlan.uniform(weights="fixed<16,12>").with_layer("conv1", data="fixed<24,8>").with_layer("fc1", data="fixed<24,8>")
    .with_layer("conv1", weights="fixed<2,1>"),
    # overlapping globs whose order decides (sorted, "fc*" would come first and lose to "c*" nothing)
    PrecisionPlan().with_layer("fc1", data="fixed<8,4>").with_layer("*1", data="fixed<6,3>"),
    PrecisionPlan().with_layer("*", weights="fixed<8,4>").with_layer("fc*", weights="fixed<4,2>").with_layer("*2", weights="fixed<6,3>"),
])
def test_plan_data_round_trips_through_sorted_json_op_for_op(plan):
    import json

    back = PrecisionPlan.from_dict(json.loads(json.dumps(plan.to_dict(), sort_keys=True)))
    assert {op: back.for_layer(op) for op in OPS} == {op: plan.for_layer(op) for op in OPS}


def test_plan_data_keeps_the_mapping_form_where_order_cannot_matter():
    plan = PrecisionPlan().with_layer("conv1", data="fixed<8,4>").with_layer("conv1", weights="fixed<4,2>").with_layer("fc*", data="fixed<6,3>")
    assert plan.to_dict()["overrides"] == {"conv1": {"data": "fixed<8,4>", "weights": "fixed<4,2>"}, "fc*": {"data": "fixed<6,3>"}}
