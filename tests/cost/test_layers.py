"""Technology tables: shipped, replaceable, and a clear error for unknown ones."""

from __future__ import annotations

import math

import pytest

from quantscope import cost, models


def test_technology_tables_can_be_replaced(tmp_path):
    table = cost.load_table("hashemi65")
    table["clock_hz"] = 500.0e6
    path = tmp_path / "fast.yaml"
    import yaml

    path.write_text(yaml.safe_dump(table))
    lenet, x = models.create("lenet"), models.example_input("lenet")
    assert cost.accelerator_energy(lenet, None, x, str(path)).energy_uj == pytest.approx(cost.accelerator_energy(lenet, None, x).energy_uj / 2, rel=1e-6)
    with pytest.raises(FileNotFoundError, match="shipped tables: .*hashemi65"):
        cost.load_table("nope")
    assert math.isclose(cost.load_table("horowitz45")["energy_pj"]["int_mult"][32], 3.1)
