"""Scaled formats (OCP MX, NVFP4, per-channel/group integers) inside emulated models: blocks run along
each operand's reduction axis (checked against torchao's MX quantization of the operands laid out
by hand), QAT passes gradients straight through, plans refuse what is not emulated, and the cost
models count the scales."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import quantscope as qs
from quantscope import cost

torchao_mx = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor", reason="torchao is a dev dependency (pip install -e '.[dev]')")


def _mx(t: torch.Tensor) -> torch.Tensor:
    """torchao's MXFP8 E4M3 (floor rule) of t, blocks of 32 along the last dimension, dequantized."""
    from torchao.prototype.mx_formats.config import ScaleCalculationMode

    flat = t.reshape(-1, t.shape[-1]).contiguous()
    scale, data = torchao_mx.to_mx(flat, torch.float8_e4m3fn, 32, ScaleCalculationMode.FLOOR)
    scale = torch.exp2(scale.view(torch.uint8).float() - 127).reshape(flat.shape[0], -1, 1)
    return (data.float().reshape(flat.shape[0], -1, 32) * scale).reshape(t.shape)


class Mixed(nn.Module):
    """A conv over 64 channels, a linear over 64 features, and a weight-free product."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(64, 32, 3, padding=1)
        self.fc = nn.Linear(64, 32)

    def forward(self, x):
        h = self.conv(x)  # (N, 32, H, W)
        t = h.flatten(2).transpose(1, 2)  # (N, HW, 32)
        return self.fc(torch.cat([t, t], -1)) @ t.transpose(1, 2)  # (N, HW, 32) @ (N, 32, HW)


def test_blocks_run_along_each_operands_reduction_axis():
    torch.manual_seed(0)
    model = Mixed().eval()
    x = torch.randn(2, 64, 4, 4)
    got = qs.emulate(model, qs.PrecisionPlan.uniform(weights="mxfp8<e4m3>", data="mxfp8<e4m3>"))(x)

    def channels_last(t, axis):
        return _mx(t.movedim(axis, -1)).movedim(-1, axis)

    h = F.conv2d(channels_last(x, 1), channels_last(model.conv.weight.detach(), 1), model.conv.bias.detach().clone(), padding=1)
    t = h.flatten(2).transpose(1, 2)
    y = F.linear(_mx(torch.cat([t, t], -1)), _mx(model.fc.weight.detach()), model.fc.bias.detach().clone())
    want = _mx(y) @ channels_last(t.transpose(1, 2), 1)
    assert torch.equal(got, want)


def test_qat_passes_gradients_straight_through_scaled_formats():
    torch.manual_seed(1)
    fc = nn.Linear(64, 8)
    x = torch.randn(5, 64)
    emulated = qs.emulate(fc, qs.PrecisionPlan.uniform(weights="mxfp4", data="int8<tensor>")).train()
    emulated(x).square().sum().backward()
    wq = qs.quantize(fc.weight.detach(), "mxfp4").requires_grad_()
    xq = qs.quantize(x, "int8<tensor>")
    F.linear(xq, wq, fc.bias.detach()).square().sum().backward()
    weight = next(p for n, p in emulated.named_parameters() if n.endswith("weight"))
    assert torch.allclose(weight.grad, wq.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec,message", [
    ({"weights": "mxfp8<e5m2>", "data": "mxfp8<e5m2>", "accumulator": "float<8,23>"}, "spans 69 bits"),
    ({"weights": "mxfp4", "data": "nvfp4", "accumulator": "float<8,23>"}, "blocks of one length"),
    ({"weights": "int8<channel>", "data": "int8<tensor>", "accumulator": "fixed<32,0>"}, "not a block"),
    ({"data": "nvfp4", "output": "mxfp8<e4m3>"}, "consuming op's data"),
    ({"elementwise": "int8<channel>"}, "consuming op's data"),
    ({"accumulator": "mxint8"}, "cannot hold a running sum"),
])
def test_plans_refuse_what_scaled_formats_cannot_do(spec, message):
    with pytest.raises(ValueError, match=message):
        qs.LayerPrecision(**spec)


@pytest.mark.parametrize("weights,bits", [
    ("mxfp4", 2048 * 4 + 32 * 2 * 8),            # 64 features: two E8M0 scales per output row
    ("nvfp4", 2048 * 4 + 32 * 4 * 8 + 32),       # four E4M3 scales per row, one FP32 tensor scale
    ("int8<channel>", 2048 * 8 + 32 * 32),       # one FP32 scale per output channel
    ("int4<group=32,scale=e8m0>", 2048 * 4 + 32 * 2 * 8),
    ("int8<tensor>", 2048 * 8 + 32),
    ("fixed<8,auto>", 2048 * 8),
])
def test_footprint_counts_the_scales(weights, bits):
    fc = nn.Linear(64, 32, bias=False)
    row = cost.footprint(fc, qs.PrecisionPlan.uniform(weights=weights, data="mxfp8<e4m3>"), torch.randn(1, 64))[0]
    assert row.weight_bits == bits
    assert row.data_bits == 64 * 8 + 2 * 8


def test_sakrs_full_adders_refuse_block_scaled_macs_by_name():
    fc = nn.Linear(64, 32)
    plan = qs.PrecisionPlan.uniform(weights="mxfp4", data="mxfp8<e4m3>")
    with pytest.raises(qs.errors.UnsupportedFormat, match="block-scaled mxfp8<e4m3>"):
        cost.adder_cost(fc, plan, torch.randn(1, 64))


def test_the_accelerator_runs_scaled_formats_on_their_element_row_plus_the_scale_step():
    """MXINT8's tile is the 8-bit fixed-point row with power raised by the scale step's share of a
    block MAC: 1/32 of an 8-bit exponent adder over (int8 multiplier + 19-bit tree adder (an element
    spans 7 binary places, a product 14, plus 5 carry bits) + two
    8-bit operand registers + 1/32 of the FP32 accumulator and its register), by hand from the
    fit's coefficients; a per-channel scale keeps the row."""
    from quantscope.cost.mac import MacModel

    fc, x = nn.Linear(64, 32), torch.randn(1, 64)
    energy = lambda w, d: cost.accelerator_energy(fc, qs.PrecisionPlan.uniform(weights=w, data=d), x).energy_uj  # noqa: E731
    c = MacModel.load().coefficients["energy_pj"]
    fp32_add = 24 * math.log2(24) * c["shift"] + 24 * c["add"] + 8 * c["exp"] + c["ctl"] + 32 * c["reg"]
    rest = 64 * c["mul2"] + 8 * c["mul1"] + 19 * c["add"] + 16 * c["reg"] + fp32_add / 32
    step = 8 * c["add"] / 32
    assert energy("mxint8", "mxint8") == pytest.approx(energy("fixed<8,6>", "fixed<8,6>") * (rest + step) / rest, rel=1e-9)
    assert energy("int8<channel>", "fixed<8,auto>") == energy("fixed<8,auto>", "fixed<8,auto>")
    assert cost.accelerator_energy(fc, qs.PrecisionPlan.uniform(weights="nvfp4", data="nvfp4"), x).layers[0].entry == "nvfp4~float4"


def test_a_scale_step_beside_a_wider_unscaled_operand_is_priced_against_that_operands_mac():
    """int4<group=32> weights with float32 data run on the float32 row; the group's scale step (1/32
    of an 8-bit exponent adder and a 24-bit significand multiplier for its FP32 scale) is added to
    a float32 MAC, not scaled by its share of a tiny int4 block MAC (that gave +32%)."""
    from quantscope.cost.mac import MacModel

    fc, x = nn.Linear(64, 32), torch.randn(1, 64)
    energy = lambda w, d: cost.accelerator_energy(fc, qs.PrecisionPlan.uniform(weights=w, data=d), x).energy_uj  # noqa: E731
    mac = MacModel.load()
    c = mac.coefficients["energy_pj"]
    step = (8 * c["add"] + 24 * 24 * c["mul2"] + 24 * c["mul1"]) / 32
    assert energy("int4<group=32>", "float32") == pytest.approx(energy("float32", "float32") * (1 + step / mac.energy("float32")), rel=1e-9)
    assert energy("int4<group=32>", "float32") < 1.02 * energy("float32", "float32")  # one 24-bit multiply per 32 MACs: ~1%


def test_the_mac_model_prices_a_block_scaled_mac_per_element():
    """Element multiplier + a block adder tree as wide as a fixed-point product plus log2 G (13 bits
    for MXFP4: E2M1 products run from 2^-2 to 36, 8 bits, plus 5 carry bits) + the block's share of
    the scale adder and the FP32 accumulator: larger blocks amortize more; the block MAC costs more
    than its element multiplier with a narrow adder and far less than a float32 MAC."""
    from quantscope.cost.mac import MacModel, block_tree_width

    mac = MacModel.load()
    assert block_tree_width(qs.parse_format("mxfp4")) == 13
    assert block_tree_width(qs.parse_format("int8<group=128>")) == 14 + 7  # |int8 x int8| <= 127^2 < 2^14; 128 terms
    assert mac.energy("mxfp4<block=16>") > mac.energy("mxfp4") > mac.energy("mxfp4<block=64>")
    assert mac.area("mxfp4") > mac.area("float<2,1,special=none>", "fixed<8,0>")
    assert mac.speedup("mxfp8<e4m3>") < mac.speedup("mxfp4") and mac.energy("mxfp8<e4m3>") < mac.energy("float32") / 4
    with pytest.raises(qs.errors.UnsupportedFormat, match="per-channel"):
        mac.area("int8<channel>")
    plan = qs.PrecisionPlan.uniform(weights="mxfp4", data="mxfp4")
    assert cost.mac_plan_cost(nn.Linear(64, 32), plan, torch.randn(1, 64)).speedup == pytest.approx(mac.speedup("mxfp4"))


def test_two_block_scaled_operands_with_an_accumulator_take_the_block_dot_product():
    """Emulated conv and linear equal arith.blocks on the operands' blocks; one scaled operand
    keeps the per-product accumulation of the dequantized values."""
    from quantscope.arith.blocks import block_conv, block_linear
    from quantscope.quantization import quantize_blocks

    torch.manual_seed(2)
    conv, fc = nn.Conv2d(40, 6, 3, padding=1), nn.Linear(40, 5)
    x = torch.randn(2, 40, 5, 5)
    acc = qs.parse_format("float<5,10>")
    with pytest.raises(ValueError, match="blocks of one length|spans"):
        qs.PrecisionPlan.uniform(weights="nvfp4", data="mxfp8<e4m3>", accumulator="float<5,10>")
    plan = qs.PrecisionPlan.uniform(weights="mxfp4", data="mxfp6<e2m3>", accumulator="float<5,10>")
    got = qs.emulate(conv, plan)(x)
    want = block_conv(quantize_blocks(x, "mxfp6<e2m3>", axis=1), quantize_blocks(conv.weight.detach(), "mxfp4", axis=1),
                      conv.bias.detach(), acc, (1, 1), (1, 1), (1, 1), (1, 1))
    assert torch.equal(got, want)
    v = torch.randn(7, 40)
    got = qs.emulate(fc, plan)(v)
    want = block_linear(quantize_blocks(v, "mxfp6<e2m3>"), quantize_blocks(fc.weight.detach(), "mxfp4"), fc.bias.detach(), acc)
    assert torch.equal(got, want)
    one = qs.PrecisionPlan.uniform(weights="mxfp4", data="fixed<8,4>", accumulator="float<5,10>")
    want = qs.arith.linear(qs.quantize(v, "fixed<8,4>"), qs.quantize(fc.weight.detach(), "mxfp4"), fc.bias.detach(), acc)
    assert torch.equal(qs.emulate(fc, one)(v), want)
    grouped = nn.Conv2d(40, 8, 3, groups=2)
    with pytest.raises(ValueError, match="groups > 1"):
        qs.emulate(grouped, plan)(x)


def test_a_per_channel_scale_on_a_convolution_weight_covers_the_output_channel():
    """int8<channel> weights of a convolution: one scale per output channel over its whole kernel,
    as PyTorch's per-channel fake quantization (axis 0) takes it; footprint counts one scale each."""
    torch.manual_seed(3)
    conv = nn.Conv2d(6, 4, 3, bias=False)
    x = torch.randn(2, 6, 5, 5)
    w = conv.weight.detach()
    scale = (w.abs().amax(dim=(1, 2, 3)) / 127).float()
    want = F.conv2d(x, torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(4, dtype=torch.int32), 0, -127, 127))
    got = qs.emulate(conv, qs.PrecisionPlan.uniform(weights="int8<channel,scaling=reciprocal>"))(x)
    assert torch.equal(got, want)
    row = cost.footprint(conv, qs.PrecisionPlan.uniform(weights="int8<channel>"), x[:1])[0]
    assert row.weight_bits == 4 * 6 * 9 * 8 + 4 * 32
    blocks = cost.footprint(conv, qs.PrecisionPlan.uniform(weights="mxfp8<e4m3>"), x[:1])[0]
    assert blocks.weight_bits == 4 * 6 * 9 * 8 + 4 * 9 * 8  # MX: a block per output channel and kernel position
