"""Hardware cost models: footprint, traffic (Judd), full adders (Sakr), MAC units (Hill),
and a DianNao-like accelerator's energy per image (Hashemi)."""

import functools
import hashlib
from pathlib import Path

from .accelerator import AcceleratorCost, accelerator_energy, tile_entry
from .adders import AdderCost, adder_cost, dot_product_adders
from .layers import CostLayer, cost_layers, load_table
from .mac import MacModel, MacPlanCost, mac_plan_cost
from .memory import Traffic, footprint, judd_plan, traffic

__all__ = [
    "AcceleratorCost", "AdderCost", "CostLayer", "Traffic", "accelerator_energy", "adder_cost",
    "cost_layers", "dot_product_adders", "footprint", "judd_plan", "load_table", "mac_plan_cost", "MacModel", "MacPlanCost",
    "models_digest", "tile_entry", "traffic",
]


@functools.lru_cache(maxsize=1)
def models_digest() -> str:
    """A hash of the cost models' code and data: stored costs made under another digest are stale."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for f in sorted([*here.glob("*.py"), *(here / "data").glob("*.yaml")]):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()
