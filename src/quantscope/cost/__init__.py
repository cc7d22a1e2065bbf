"""Hardware cost models: footprint, traffic (Judd), full adders (Sakr), MAC units (Hill),
and a DianNao-like accelerator's energy per image (Hashemi)."""

from .accelerator import AcceleratorCost, accelerator_energy, tile_entry
from .adders import AdderCost, adder_cost, dot_product_adders
from .layers import CostLayer, cost_layers, load_table
from .mac import MacModel, MacPlanCost, mac_plan_cost
from .memory import Traffic, footprint, judd_plan, traffic

__all__ = [
    "AcceleratorCost", "AdderCost", "CostLayer", "Traffic", "accelerator_energy", "adder_cost",
    "cost_layers", "dot_product_adders", "footprint", "judd_plan", "load_table", "mac_plan_cost", "MacModel", "MacPlanCost",
    "tile_entry", "traffic",
]
