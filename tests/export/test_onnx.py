"""QONNX executed by qonnx and ONNX QDQ executed by onnxruntime equal emulate() bit for bit on
LeNet (1,000 MNIST test images); what the ONNX targets cannot express is refused by op."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED_DATASETS

import quantscope as qs
from quantscope import data, train
from quantscope.export import ExportError, export

onnx = pytest.importorskip("onnx", reason="the export extra is not installed (pip install -e '.[export]')")
ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
pytest.importorskip("qonnx", reason="the export extra is not installed (pip install -e '.[export]')")


@pytest.fixture(scope="module")
def lenet():
    model, meta = train.load_model("checkpoints/lenet-mnist.pt")
    x = data.load("mnist", "test", data_dir=SHARED_DATASETS, normalize=meta["normalize"]).tensors(limit=1000)[0]
    calibration = data.load("mnist", "train", data_dir=SHARED_DATASETS, normalize=meta["normalize"]).tensors(limit=256)[0]
    return model, x, calibration


def _emulated(res, x) -> np.ndarray:
    with torch.no_grad():
        return res.emulated(x).numpy()


@pytest.mark.parametrize("spec", [{"weights": "fixed<8,auto>", "data": "fixed<8,auto>"},
                                  {"weights": "fixed<4,auto>", "data": "ufixed<6,auto>"},
                                  {"weights": "binary", "data": "fixed<8,auto>", "bias": "fixed<8,auto>"},
                                  {"weights": "float<4,3>", "data": "float<4,3>"}],
                         ids=["W8A8", "W4A6 unsigned", "binary weights", "float<4,3> (FloatQuant)"])
def test_qonnx_executed_by_qonnx_equals_emulate(lenet, spec, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    model, x, calibration = lenet
    res = export(model, qs.PrecisionPlan.from_spec(spec), calibration, tmp_path, "qonnx", batch=len(x))
    graph = onnx.load(tmp_path / "model.onnx").graph
    kinds = {n.op_type for n in graph.node}
    assert kinds >= {"Conv", "Gemm"} and kinds & {"Quant", "FloatQuant"}
    wrapped = ModelWrapper(str(tmp_path / "model.onnx")).transform(InferShapes())
    got = execute_onnx(wrapped, {"input": x.numpy()})[wrapped.graph.output[0].name]
    want = _emulated(res, x)
    assert np.array_equal(got, want), f"{(got != want).sum()} of {want.size} outputs differ"


@pytest.mark.parametrize("level", ["ORT_DISABLE_ALL", "ORT_ENABLE_ALL"])
def test_onnx_qdq_in_onnxruntime_equals_emulate_on_an_int8_plan(lenet, level, tmp_path):
    """Also with onnxruntime's graph optimizations, which may fuse QDQ pairs with the products."""
    model, x, calibration = lenet
    res = export(model, qs.PrecisionPlan.from_spec({"weights": "fixed<8,auto>", "data": "fixed<8,auto>"}), calibration, tmp_path, "onnx-qdq")
    assert {n.op_type for n in onnx.load(tmp_path / "model.onnx").graph.node} >= {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"}
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    want = _emulated(res, x)
    assert np.array_equal(got, want), f"{(got != want).sum()} of {want.size} outputs differ"


@pytest.mark.parametrize("fmt,spec,match", [
    ("qonnx", {"weights": "fixed<8,auto>", "data": "fixed<8,auto>", "accumulator": "fixed<20,10>"},
     r"op conv1: accumulator fixed<20,10> rounds after every add, which qonnx cannot express; use the npz export"),
    ("onnx-qdq", {"weights": "fixed<4,auto>", "data": "fixed<8,auto>"}, r"op conv1 weights: fixed<4,\d+> has 4 bits; ONNX QDQ represents 8-bit integers"),
    ("onnx-qdq", {"weights": "pow2<6>", "data": "fixed<8,auto>"}, r"op conv1 weights: pow2<6,-?\d+> is not an 8-bit integer"),
    ("onnx-qdq", {"weights": "fixed<8,auto>", "data": "float<4,3>"}, r"op conv1 data: float<4,3> has no integer form"),
    ("qonnx", {"weights": "fixed<8,auto>", "data": "float<4,3,subnormals=off>"}, r"op conv1 data: float<4,3,subnormals=off> flushes subnormals"),
    ("qonnx", {"weights": "fixed<8,auto>", "data": "fixed<8,3,overflow=wrap>"}, r"op conv1 data: fixed<8,3,overflow=wrap> wraps on overflow; qonnx saturates"),
])
def test_what_onnx_cannot_express_is_refused_by_op(lenet, fmt, spec, match, tmp_path):
    model, _, calibration = lenet
    with pytest.raises(ExportError, match=match):
        export(model, qs.PrecisionPlan.from_spec(spec), calibration[:32], tmp_path, fmt)
    assert not (tmp_path / "model.onnx").exists()


def test_onnx_export_refuses_rounding_other_than_nearest(lenet, tmp_path):
    model, _, calibration = lenet
    with pytest.raises(ExportError, match="onnx-qdq rounds to nearest \\(ties to even\\); the plan rounds toward_zero"):
        export(model, qs.PrecisionPlan.from_spec({"weights": "fixed<8,auto>", "data": "fixed<8,auto>"}), calibration[:32], tmp_path, "onnx-qdq",
               rounding="toward_zero")
