"""The integer executor (NumPy integers only) against emulate(), bit for bit, on real data:
LeNet on 250 MNIST test images and CifarNet and ResNet-20 on 250 CIFAR-10 test images, for
fixed-point plans without and with accumulators (saturating and wrapping), powers-of-two weights
and binary weights; and what an export refuses."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from conftest import SHARED_DATASETS

import quantscope as qs
from quantscope import data, train
from quantscope.export import ExportError, emulated_for_export, export, load
from quantscope.export.integer import IntegerModel, round_div
from quantscope.export.manifest import integer_manifest

CHECKPOINTS = {"lenet": "lenet-mnist.pt", "cifarnet": "cifarnet-cifar10-jpeg.pt", "resnet20": "resnet20-cifar10-jpeg.pt"}
W8A8 = {"weights": "fixed<8,auto>", "data": "fixed<8,auto>"}
PLANS = {
    "W8A8": W8A8,
    "pow2 weights": {"weights": "pow2<6>", "data": "fixed<8,auto>"},
    "binary weights": {"weights": "binary", "data": "fixed<8,auto>", "bias": "fixed<8,auto>"},
}
#: products rounded onto the accumulator at every step (LeNet), or exact with saturation and wrap-around
ROUNDED_ACCUMULATORS = {"saturating, products rounded": "fixed<20,10>", "wrapping, products rounded": "fixed<16,6,overflow=wrap>"}
EXACT_ACCUMULATORS = {"saturating": "fixed<24,16>", "wrapping": "fixed<20,16,overflow=wrap>"}


def _network(name: str):
    model, meta = train.load_model(f"checkpoints/{CHECKPOINTS[name]}")
    dataset, norm = meta["dataset"], meta.get("normalize", "standard")
    # 250 images keep the suite short (the sequential integer sums run in NumPy);
    # experiments/export_check.py compares every plan on 1,000
    x = data.load(dataset, "test", data_dir=SHARED_DATASETS, normalize=norm).tensors(limit=250)[0]
    calibration = data.load(dataset, "train", data_dir=SHARED_DATASETS, normalize=norm).tensors(limit=256)[0]
    return model, x, calibration


@pytest.fixture(scope="module", params=["lenet", "cifarnet", "resnet20"])
def network(request):
    return request.param, *_network(request.param)


def _plans(name: str) -> dict[str, dict]:
    """Every plan on LeNet; on CifarNet all but the wrapping accumulator (wrapping is tested on
    LeNet, with every product rounded); on ResNet-20 (3.3x CifarNet's MACs) W8A8 and a saturating
    accumulator. experiments/export_check.py runs every plan on every network (suite time)."""
    accumulators = ROUNDED_ACCUMULATORS if name == "lenet" else EXACT_ACCUMULATORS
    plans = {**PLANS, **{f"W8A8, accumulator {k}": {**W8A8, "accumulator": v} for k, v in accumulators.items()}}
    keep = {"lenet": list(plans), "cifarnet": [k for k in plans if "wrapping" not in k], "resnet20": ["W8A8", "W8A8, accumulator saturating"]}
    return {k: plans[k] for k in keep[name]}


def test_the_integer_executor_equals_emulate_bit_for_bit(network, tmp_path):
    name, model, x, calibration = network
    gemm = "int64" if name == "lenet" else "float64-exact"  # NumPy's int64 product has no BLAS: 6x slower
    for label, spec in _plans(name).items():
        res = export(model, qs.PrecisionPlan.from_spec(spec), calibration, tmp_path / "out", "npz")
        with torch.no_grad():
            want = res.emulated(x).double().numpy()
        executor = load(tmp_path / "out", gemm=gemm)
        got = executor(x.numpy())
        assert np.array_equal(got, want), f"{name}, {label}: {(got != want).sum()} of {want.size} outputs differ ({executor.warnings})"


def test_int64_and_exact_float64_products_agree():
    model, x, calibration = _network("cifarnet")
    plan = qs.PrecisionPlan.from_spec({**W8A8, "accumulator": "fixed<24,16>"})
    manifest, arrays = integer_manifest(emulated_for_export(model, plan, calibration))
    slow, fast = IntegerModel(manifest, arrays, "int64"), IntegerModel(manifest, arrays, "float64-exact")
    a, b = slow.run(x[:50].numpy()), fast.run(x[:50].numpy())
    assert a.exp == b.exp and np.array_equal(a.codes, b.codes)


def test_emulate_rounding_in_float32_is_named():
    """A 16-bit bias on binary weights: the sum with the bias needs more than 24 bits, which
    emulate() (float32, no accumulator) rounds; the executor is exact and says which op differs."""
    model, x, calibration = _network("lenet")
    plan = qs.PrecisionPlan.from_spec({"weights": "binary", "data": "fixed<8,auto>", "bias": "fixed<16,auto>"})
    qmodel = emulated_for_export(model, plan, calibration)
    executor = IntegerModel(*integer_manifest(qmodel))
    got = executor(x[:100].numpy())
    with torch.no_grad():
        want = qmodel(x[:100]).double().numpy()
    assert not np.array_equal(got, want)
    assert any(w.startswith("op conv2: the sum with the bias needs more than 24 significant bits") for w in executor.warnings)


def test_the_export_files_and_their_contents(tmp_path):
    model, x, calibration = _network("lenet")
    res = export(model, qs.PrecisionPlan.from_spec(W8A8), calibration, tmp_path, "npz")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [p.name for p in res.files] == ["manifest.json", "arrays.npz"] and res.ops == ["conv1", "conv2", "ip1", "ip2"]
    conv1 = next(n for n in manifest["nodes"] if n["name"] == "conv1")
    frac = res.emulated.spec("conv1").data.frac  # the radix calibrated on the batch
    assert conv1["data"] == {"format": f"fixed<8,{frac}>", "bits": 8, "frac": frac, "signed": True, "overflow": "saturate"}
    assert [n["op"] for n in manifest["nodes"]] == ["input", "conv2d", "max_pool2d", "conv2d", "max_pool2d", "flatten", "linear", "relu",
                                                    "linear", "output"]
    w = np.load(tmp_path / "arrays.npz")["conv1.weight"]
    assert w.dtype == np.int64 and w.min() >= -128 and w.max() <= 127 and w.shape == (20, 1, 5, 5)
    (tmp_path / "arrays.npz").write_bytes((tmp_path / "arrays.npz").read_bytes() + b"x")
    with pytest.raises(ValueError, match="arrays.npz is not the file manifest.json was written with"):
        load(tmp_path)


@pytest.mark.parametrize("spec,match", [
    ({"weights": "float<4,3>", "data": "fixed<8,auto>"}, r"op conv1 weights: float<4,3> has no integer form \(a float datapath\)"),
    ({"weights": "fixed<8,auto>", "data": "float<4,3>"}, r"op conv1 data: float<4,3> has no integer form; integer export needs fixed point"),
    ({**W8A8, "accumulator": "float<5,10>"}, r"op conv1 accumulator: float<5,10> has no integer form"),
    ({**W8A8, "accumulator": "fixed<32,16>"}, r"op conv1: accumulator fixed<32,16> has more than 24 magnitude bits"),
    ({"weights": "binary<mean>", "data": "fixed<8,auto>", "bias": "fixed<8,auto>"}, r"op conv1 weights: binary<.*> has magnitude .*, not a power of two"),
])
def test_what_integers_cannot_express_is_refused_by_op(spec, match, tmp_path):
    model, _, calibration = _network("lenet")
    with pytest.raises(ExportError, match=match):
        export(model, qs.PrecisionPlan.from_spec(spec), calibration[:32], tmp_path, "npz")
    assert not (tmp_path / "manifest.json").exists()


def test_a_batchnorm_that_cannot_be_folded_is_refused(tmp_path):
    class PreActivation(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.fc = torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4 * 26 * 26, 10)

        def forward(self, x):
            y = self.conv(x)
            return self.fc(torch.flatten(self.bn(y) + y, 1))  # the conv's output also feeds the add

    with pytest.warns(UserWarning, match="bn"), pytest.raises(ExportError, match="bn: a BatchNorm that could not be folded"):
        export(PreActivation().eval(), qs.PrecisionPlan.from_spec(W8A8), torch.randn(8, 1, 28, 28), tmp_path, "npz")


@pytest.mark.parametrize("mode", ["nearest", "floor", "toward_zero"])
def test_integer_rounding_against_fractions(mode):
    """round_div against Python's exact rationals, every numerator in a range, several divisors
    (powers of two take the shift path)."""
    num = np.arange(-300, 301, dtype=np.int64)
    for den in (1, 2, 3, 4, 7, 8, 64, 100):
        want = [{"nearest": round(Fraction(n, den)), "floor": math.floor(Fraction(n, den)), "toward_zero": math.trunc(Fraction(n, den))}[mode]
                for n in num.tolist()]
        assert round_div(num, den, mode).tolist() == want, den
