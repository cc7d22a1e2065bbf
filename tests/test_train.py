"""Training determinism, checkpoints that load safely, QAT with shadow weights, metrics."""

from __future__ import annotations

import pickle

import pytest
import torch

import quantscope as qs
from quantscope import data, metrics, models
from quantscope.train import TrainConfig, evaluate, finetune, load_checkpoint, load_model, save_checkpoint, train


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_deterministic_for_a_seed(digits):
    tr, te = digits
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05, seed=4)
    a, b, c = (models.create("digits-cnn", seed=1) for _ in range(3))
    train(a, tr, cfg)
    train(b, tr, cfg)
    train(c, tr, TrainConfig(epochs=1, batch_size=64, lr=0.05, seed=5))
    sa, sb, sc = _state(a), _state(b), _state(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_training_learns_and_reports_each_epoch(digits):
    tr, te = digits
    model = models.create("digits-cnn", seed=0)
    seen = []
    result = train(model, tr, TrainConfig(epochs=8, batch_size=32, lr=0.05), te, on_epoch=seen.append)
    assert [m.epoch for m in seen] == list(range(1, 9))
    assert result.final_accuracy >= 0.95 and result.history[-1].loss < result.history[0].loss


def test_checkpoints_round_trip_and_record_metadata(tmp_path, digits):
    tr, te = digits
    model = models.create("digits-cnn", seed=0)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, {"dataset": "digits", "seed": 0, "accuracy": 0.5})
    loaded, meta = load_model(path)
    assert meta == {"model": "digits-cnn", "width": 1.0, "dataset": "digits", "seed": 0, "accuracy": 0.5}
    x = te.tensors(limit=8)[0]
    assert torch.equal(loaded(x), model.eval()(x))
    assert not list(tmp_path.glob("*.tmp"))


class _Evil:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the hostile file is a plain pickle
def test_checkpoints_never_execute_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "meta": _Evil()}, f)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


@pytest.fixture(scope="module")
def trained(digits):
    tr, te = digits
    model = models.create("digits-cnn", seed=0)
    train(model, tr, TrainConfig(epochs=10, batch_size=32, lr=0.05))
    return model


def test_qat_starts_from_float_weights_and_keeps_the_model(trained, digits):
    tr, te = digits
    before = _state(trained)
    plan = qs.PrecisionPlan.uniform(weights="fixed<3,auto>", data="fixed<4,auto>")
    calib = tr.tensors(limit=256)[0]
    ptq = evaluate(qs.emulate(trained, plan, calibration=calib), te)
    qmodel, hist = finetune(trained, plan, tr, TrainConfig(epochs=4, batch_size=32, lr=0.01), te, calibration=calib)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    assert hist.final_accuracy >= ptq and hist.final_accuracy >= 0.9
    assert isinstance(qmodel, qs.EmulatedModel) and not qmodel.ops["conv1"].is_float32


def test_binaryconnect_clipping_and_weight_clip(trained, digits):
    tr, _ = digits
    plan = qs.PrecisionPlan.uniform(weights="binary", bias="float32", data="fixed<8,auto>")
    qmodel, _ = finetune(trained, plan, tr, TrainConfig(epochs=1, batch_size=64, lr=0.1, max_batches=5))
    assert all(float(qmodel.model.get_parameter(op.weight).detach().abs().max()) <= 1.0 for op in qmodel.table)
    mlp = models.create("mlp", seed=0)
    mnist_like = data.Dataset("toy", "train", torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (64,)),
                              tuple("0123456789"), (0.0,), (1.0,))
    train(mlp, mnist_like, TrainConfig(epochs=1, batch_size=32, lr=5.0, momentum=0.0))
    assert max(float(m.weight.detach().abs().max()) for m in mlp.modules() if isinstance(m, torch.nn.Linear)) <= 1.0


def test_metrics_against_hand_computed_values():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.05, 0.15], [0.2, 0.35, 0.45], [0.2, 0.5, 0.3]])
    labels = torch.tensor([1, 2, 0, 2])  # top-1 right only in row 1; top-2 also in rows 2 and 4
    assert metrics.topk_accuracy(logits, labels) == 0.25
    assert metrics.topk_accuracy(logits, labels, k=2) == 0.75
    other = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert metrics.mismatch_rate(logits, other) == 0.5
    ref = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert metrics.r_squared(ref, ref) == 1.0
    assert metrics.r_squared(ref, torch.tensor([1.0, 2.0, 3.0, 5.0])) == pytest.approx(1 - 1 / 5)
    assert metrics.r_squared(ref, torch.full((4,), 2.5)) == 0.0
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        metrics.topk_accuracy(logits, labels, k=4)


def test_an_interrupted_training_resumes_to_the_uninterrupted_result(digits, tmp_path):
    tr, te = digits
    cfg = TrainConfig(epochs=3, batch_size=64, lr=0.05, augment=False, max_batches=6)
    reference = models.create("digits-cnn", seed=0)
    want = train(reference, tr, cfg, te)

    class Killed(Exception):
        pass

    def stop_after_one(m):
        if m.epoch == 1:
            raise Killed

    progress = tmp_path / "run.progress"
    model = models.create("digits-cnn", seed=0)
    with pytest.raises(Killed):
        train(model, tr, cfg, te, on_epoch=stop_after_one, progress_file=progress)
    resumed = models.create("digits-cnn", seed=5)  # other initial weights: the progress file must restore them
    got = train(resumed, tr, cfg, te, progress_file=progress)
    assert [m.epoch for m in got.history] == [1, 2, 3]
    assert [(m.loss, m.eval_accuracy) for m in got.history] == [(m.loss, m.eval_accuracy) for m in want.history]
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), reference.state_dict().values()))
    with pytest.raises(ValueError, match="written with other settings"):
        train(models.create("digits-cnn", seed=0), tr, TrainConfig(epochs=4, batch_size=64, lr=0.05, max_batches=6), progress_file=progress)
