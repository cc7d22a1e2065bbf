"""Hill's MAC model: its fit, monotonicity, and plan costs."""

from __future__ import annotations

import itertools

import pytest

import quantscope as qs
from quantscope import models
from quantscope.cost.mac import MacModel, fit
from quantscope.published import HILL_POINTS


def test_hill_mac_fit_reproduces_its_calibration_points_within_10_percent():
    shipped = MacModel.load()
    result = fit()
    assert all(abs(r["rel_error"]) < 0.10 for r in result["residuals"]), [r for r in result["residuals"] if abs(r["rel_error"]) >= 0.10]
    for point in HILL_POINTS:
        assert shipped.speedup(point["format"]) == pytest.approx(point["speedup"], rel=0.10)
        assert shipped.energy_saving(point["format"]) == pytest.approx(point["energy_saving"], rel=0.10)
    assert shipped.energy("float<8,23>") == pytest.approx(3.7 + 0.9, rel=0.10)  # Horowitz fp32 mult + add


def test_hill_mac_model_is_monotone_in_every_bit_width():
    m = MacModel.load()
    for metric in (m.energy, m.area, m.delay):
        for e, man in itertools.product(range(2, 9), range(0, 23)):
            assert metric(f"float<{e},{man + 1}>") > metric(f"float<{e},{man}>")
            if e < 8:
                assert metric(f"float<{e + 1},{man}>") >= metric(f"float<{e},{man}>")
        for b in range(2, 32):
            assert metric(f"fixed<{b + 1},0>") > metric(f"fixed<{b},0>")
    assert m.speedup("float<8,23>") == pytest.approx(1.0) and m.delay("fixed<1,0>") > 0


def test_mac_plan_cost_weights_layers_by_macs_and_refuses_uncovered_formats():
    from quantscope.cost import MacModel, mac_plan_cost

    net, x = models.create("lenet"), models.example_input("lenet")
    mac = MacModel.load()
    uniform = mac_plan_cost(net, qs.PrecisionPlan.uniform(weights="float<6,7>", data="float<6,7>"), x)
    assert uniform.speedup == pytest.approx(mac.speedup("float<6,7>"))
    assert uniform.energy_saving == pytest.approx(mac.energy_saving("float<6,7>"))
    layers = [c.info for c in qs.cost.cost_layers(net, None, x)]
    mixed_plan = qs.PrecisionPlan.uniform(weights="float<6,7>", data="float<6,7>").with_layer(layers[0].name, data="fixed<16,8>")
    mixed = mac_plan_cost(net, mixed_plan, x)
    total = sum(i.macs for i in layers)
    ad = lambda f: mac.area(f) * mac.delay(f)  # noqa: E731
    expected = total * ad("float32") / (layers[0].macs * ad("fixed<16,8>") + (total - layers[0].macs) * ad("float<6,7>"))
    assert mixed.speedup == pytest.approx(expected)
    with pytest.raises(ValueError, match="not binary"):
        mac_plan_cost(net, qs.PrecisionPlan.uniform(weights="binary", data="binary"), x)
