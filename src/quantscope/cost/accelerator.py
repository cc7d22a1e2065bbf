"""Hashemi et al.'s DianNao-like accelerator: energy per image = power x time.

The tile has 16 neuron units of 16 synapses. A neuron unit produces one output in
ceil(D_k / 16) cycles per kernel segment: for a convolution whose window has at least 16
products, one segment per input channel of kh*kw products (cycles per output = C_in/groups *
ceil(kh*kw / 16)); a smaller window packs floor(16 / (kh*kw)) channels into each cycle (cycles
per output = ceil(C_in/groups / floor(16 / (kh*kw))), so a 1x1 convolution costs what the
equivalent linear layer does); every other product op (linear, matmul, attention, recurrent
products, transposed convolutions) one segment of D products (ceil(D / 16)), D its dot-product
length. The 16 units share the outputs, so an op takes
outputs * cycles-per-output / 16 cycles, plus its pipeline fill (3 stages; 2 for binary, whose
first two stages are merged). Time = cycles / 250 MHz x the precision's time factor; power and
area per precision come from Table III (buffers included, main memory not). This reproduces the
published float energies of LeNet, ConvNet and ALEX within 1.1%.

Precisions the table does not list follow a documented rule (`tile_entry`): fixed point of B
bits (B = the wider of weights and data) interpolates power, area and time factor linearly in B
between the listed 4, 8, 16 and 32 bits (extrapolating from the nearest segment outside, never
below binary's figures); powers of two and binary weights use their rows whatever the exponent
width and data width; any float format uses the float row scaled by fixed(B)/fixed(32) at its
width B. Scaled formats (*predicted*: no published accelerator runs them) take their element
formats' row, and block-scaled ones scale its power and area by the MAC model's share of the scale
step in a block MAC (element multiplier + block adder tree + 1/G of the scale step and of the
accumulator, `MacModel.scale_overhead`), or in a wider unscaled operand's MAC where that sets
the row; per-channel and per-tensor scales, applied once per output, keep the element row. Optionally,
main-memory energy for the traffic of `memory.traffic` is added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import nn

from ..formats import ScaledFormat
from ..plan import LayerPrecision, PrecisionPlan
from .layers import CostLayer, cost_layers, load_table

__all__ = ["ACCELERATOR_KEYS", "TileEntry", "tile_entry", "layer_cycles", "LayerEnergy", "AcceleratorCost", "accelerator_energy"]


@dataclass(frozen=True)
class TileEntry:
    """Area (mm^2), power (mW) and time factor of the tile at one precision."""

    key: str
    area_mm2: float
    power_mw: float
    time_factor: float
    binary: bool = False


def _row(table: dict[str, Any], key: str) -> TileEntry:
    p = table["precisions"][key]
    return TileEntry(key, float(p["area_mm2"]), float(p["power_mw"]), float(table["time_factor"][key]), key == "binary")


def _fixed_entry(table: dict[str, Any], bits: int) -> TileEntry:
    """Table row for fixed point at `bits`, interpolated/extrapolated linearly in bits."""
    points = sorted((int(table["precisions"][k]["weights"]), k) for k in table["precisions"] if k.startswith("fixed"))
    exact = {b: k for b, k in points}
    if bits in exact:
        return _row(table, exact[bits])
    lo_i = 0 if bits < points[0][0] else len(points) - 2 if bits > points[-1][0] else max(i for i, (b, _) in enumerate(points) if b < bits)
    (b0, k0), (b1, k1) = points[lo_i], points[lo_i + 1]
    r0, r1 = _row(table, k0), _row(table, k1)
    t = (bits - b0) / (b1 - b0)
    lerp = lambda a, b: a + t * (b - a)  # noqa: E731
    floor = _row(table, "binary")
    return TileEntry(
        f"fixed{bits}",
        max(lerp(r0.area_mm2, r1.area_mm2), floor.area_mm2),
        max(lerp(r0.power_mw, r1.power_mw), floor.power_mw),
        max(lerp(r0.time_factor, r1.time_factor), floor.time_factor),
    )


def tile_entry(precision: LayerPrecision, table: dict[str, Any]) -> TileEntry:
    """The tile's figures for an op's (weights, data) formats (rule in the module docstring)."""
    w, d = precision.weights, precision.data
    if w.scale_sharing != "none" or d.scale_sharing != "none":
        return _scaled_entry(precision, table)
    if w.datapath == "sign":
        return _row(table, "binary")
    if w.datapath == "shift":
        return _row(table, "pow2")
    bits = max(w.bits, d.bits)
    if "float" in (w.datapath, d.datapath):
        if bits == 32:
            return _row(table, "float")
        f, fixed, fixed32 = _row(table, "float"), _fixed_entry(table, bits), _fixed_entry(table, 32)
        return TileEntry(f"float{bits}", f.area_mm2 * fixed.area_mm2 / fixed32.area_mm2,
                         f.power_mw * fixed.power_mw / fixed32.power_mw, fixed.time_factor)
    return _fixed_entry(table, bits)


def _scaled_entry(precision: LayerPrecision, table: dict[str, Any]) -> TileEntry:
    """A tile of scaled formats: the row of their element formats, with power and area scaled by
    the MAC model's share of the scale step in a block MAC (`MacModel.scale_overhead`: the block
    MAC over the same without its scale step) for the wider block-scaled operand, or in the MAC of
    a wider unscaled operand where that sets the row; per-channel and per-tensor scales apply once
    per output after the tree and leave the row as it is."""
    from .mac import shipped

    scaled = {role: cast(ScaledFormat, f) for role in ("weights", "data") if (f := getattr(precision, role)).scale_sharing != "none"}
    base = tile_entry(replace(precision, **{role: f.element for role, f in scaled.items()}), table)
    blocks = [f for f in scaled.values() if f.scale_sharing == "block"]
    if not blocks:
        return replace(base, key=f"{next(iter(scaled.values()))}~{base.key}")
    widest = max(blocks, key=lambda f: f.element.bits)
    wider = [f for role in ("weights", "data") if role not in scaled and (f := getattr(precision, role)).bits > widest.element.bits]
    energy, area = shipped().scale_overhead(widest, max(wider, key=lambda f: f.bits, default=None))
    return TileEntry(f"{widest}~{base.key}", base.area_mm2 * area, base.power_mw * energy, base.time_factor, base.binary)


def layer_cycles(c: CostLayer, table: dict[str, Any], binary: bool = False) -> int:
    """Tile cycles of one product op (see the module docstring); lookups take none."""
    syn, neurons = int(table["synapses"]), int(table["neurons"])
    m = c.info
    if not m.macs:
        return 0
    if m.kind.startswith("conv") and not m.kind.startswith("conv_transpose"):
        window = math.prod(m.kernel_size)
        channels = m.in_channels // m.conv_groups
        if window >= syn:
            per_output = channels * math.ceil(window / syn)
        else:
            per_output = math.ceil(channels / (syn // window))  # small windows: several channels per cycle
    else:
        per_output = math.ceil(c.fan_in / syn)
    stages = int(table["binary_pipeline_stages"] if binary else table["pipeline_stages"])
    return math.ceil(m.outputs * per_output / neurons) + stages


@dataclass(frozen=True)
class LayerEnergy:
    """One layer on the accelerator: cycles, seconds, microjoules, the tile row used."""

    name: str
    cycles: int
    seconds: float
    energy_uj: float
    entry: str


@dataclass(frozen=True)
class AcceleratorCost:
    """Energy per image on the tile (plus main memory when asked)."""

    layers: list[LayerEnergy]
    memory_uj: float

    @property
    def cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers)

    @property
    def seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    @property
    def energy_uj(self) -> float:
        return sum(layer.energy_uj for layer in self.layers) + self.memory_uj


#: what an accelerator table must hold (see data/hashemi65.yaml)
ACCELERATOR_KEYS = ("clock_hz", "neurons", "synapses", "pipeline_stages", "binary_pipeline_stages", "precisions", "time_factor")


def accelerator_energy(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision | None,
    example_input: torch.Tensor,
    hardware: str | dict[str, Any] = "hashemi65",
    memory: str | None = None,
    batch_size: int | None = 1,
) -> AcceleratorCost:
    """Energy per image of `model` under `plan` on the accelerator `hardware` (a table name,
    path or mapping). `memory` ("dram", "sram_1mb", ... from horowitz45) adds main-memory energy
    for the plan's traffic (per image, `batch_size` as in `memory.traffic`)."""
    table = load_table(hardware, ACCELERATOR_KEYS) if not isinstance(hardware, dict) else hardware
    rows = cost_layers(model, plan, example_input)
    clock = float(table["clock_hz"])
    out = []
    for c in rows:
        entry = tile_entry(c.precision, table)
        cycles = layer_cycles(c, table, entry.binary)
        seconds = cycles / clock * entry.time_factor
        out.append(LayerEnergy(c.name, cycles, seconds, seconds * entry.power_mw * 1e3, entry.key))
    memory_uj = 0.0
    if memory is not None:
        from .memory import traffic

        tech = load_table("horowitz45")["memory_pj_per_64bit"]
        if memory not in tech:
            raise ValueError(f"unknown memory {memory!r}; known: {', '.join(tech)}")
        bits = traffic(model, plan, example_input, batch_size).total_bits
        memory_uj = bits / 64 * float(tech[memory]) * 1e-6
    return AcceleratorCost(out, memory_uj)
