"""Float training, evaluation, checkpoints, and quantization-aware fine-tuning.

QAT follows Hashemi et al.: start from the float weights, keep a full-precision shadow copy (the
emulated model's own parameters), run the forward pass quantized (straight-through gradients),
and update the shadow copy. Binary weights are clipped to [-1, 1] (BinaryConnect) after each
step; any model with a `weight_clip` attribute (Sakr's MLP) is clipped likewise.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import metrics
from .data import Dataset
from .emulation import EmulatedModel, emulate
from .files import atomic_path
from .plan import PrecisionPlan

__all__ = ["QAT_DEFAULTS", "torch_threads", "TrainConfig", "EpochMetrics", "train", "evaluate", "predict", "finetune", "save_checkpoint",
           "load_checkpoint", "load_model", "load_weights", "check_fits"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, epochs, batch size, seed, augmentation."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"  # "sgd" (momentum) or "adam"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine", "step" (x0.1 at 50% and 75%) or "constant"
    seed: int = 0
    augment: bool = False  # random crops and flips (for CIFAR-like data)
    max_batches: int | None = None  # stop each epoch early (for quick tests)

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'step' or 'constant', got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n torch threads (None: leave the count), restoring it afterwards; float
    sums depend on the thread count, so results that must not depend on the machine fix it."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: the settings of quantization-aware fine-tuning unless told otherwise (Adam, a small learning rate)
QAT_DEFAULTS = TrainConfig(epochs=2, lr=1e-3, optimizer="adam", weight_decay=0.0)


@dataclass
class EpochMetrics:
    """One epoch: mean training loss and accuracy, evaluation accuracy, seconds."""

    epoch: int
    loss: float
    train_accuracy: float
    eval_accuracy: float | None
    seconds: float
    lr: float


@dataclass
class TrainResult:
    """The history of a training run."""

    history: list[EpochMetrics] = field(default_factory=list)

    @property
    def final_accuracy(self) -> float | None:
        return self.history[-1].eval_accuracy if self.history else None


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(total, 1)))
    if cfg.schedule == "step":
        return cfg.lr * (0.1 if step >= 0.5 * total else 1.0) * (0.1 if step >= 0.75 * total else 1.0)
    return cfg.lr


def _clip_weights_(model: nn.Module) -> None:
    """BinaryConnect clipping for the weights of binary-weight ops, and a model-wide
    `weight_clip` (Sakr's MLP) for the weights of every linear and convolution layer."""
    inner = model.model if isinstance(model, EmulatedModel) else model
    limit = getattr(inner, "weight_clip", None)
    binary: dict[str, float] = {}
    if isinstance(model, EmulatedModel) and model.table is not None:
        for op in model.table:
            clip = model.spec(op.name).precision.weights.training_clip
            if clip is not None and op.weight is not None:
                binary[op.weight] = clip
    with torch.no_grad():
        for name, w in inner.named_parameters():
            if name in binary:
                w.clamp_(-binary[name], binary[name])
        if limit is not None:
            for m in inner.modules():
                if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                    m.weight.clamp_(-limit, limit)


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .progress import progress_bar

    return progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.fields[status]}"), enabled=enabled, transient=True)


@dataclass
class _Run:
    """What a training run carries from epoch to epoch (and what a progress file holds)."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    epoch: int = 0
    result: TrainResult = field(default_factory=TrainResult)

    def save(self, path: Path, model: nn.Module, config: TrainConfig) -> None:
        """Write the run's state after an epoch, atomically."""
        payload = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "optimizer": self.optimizer.state_dict(),
                   "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(), "step": self.step,
                   "epoch": self.epoch, "history": [asdict(m) for m in self.result.history], "config": asdict(config)}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def restore(self, path: Path, model: nn.Module, config: TrainConfig) -> None:
        """Continue from a progress file written by `save` with the same settings."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
            raise ValueError(f"training progress file {path} cannot be read ({err}); delete it to start over") from None
        if payload.get("config") != asdict(config):
            raise ValueError(f"training progress file {path} was written with other settings ({payload.get('config')}); "
                             "delete it to start over, or resume with the same settings")
        model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        self.step, self.epoch = payload["step"], payload["epoch"]
        self.result.history = [EpochMetrics(**m) for m in payload["history"]]


def _epoch(model: nn.Module, train_set: Dataset, config: TrainConfig, run: _Run, steps_per_epoch: int, bar: Any, task: Any) -> tuple[float, float, float]:
    """One epoch: (mean loss, training accuracy, last learning rate)."""
    model.train()
    loss_sum, correct, seen, lr = 0.0, 0, 0, config.lr
    total = steps_per_epoch * config.epochs
    batches = train_set.batches(config.batch_size, shuffle=True, generator=run.generator, augment=config.augment)
    device = next(model.parameters()).device
    for i, (x, y) in enumerate(batches):
        if i >= steps_per_epoch:
            break
        x, y = x.to(device), y.to(device)
        lr = _lr_at(config, run.step, total)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        run.optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        flat = logits.reshape(-1, logits.shape[-1])
        loss = nn.functional.cross_entropy(flat, y.reshape(-1))
        loss.backward()
        run.optimizer.step()
        _clip_weights_(model)
        loss_sum += float(loss.detach()) * y.numel()
        correct += int((flat.argmax(1) == y.reshape(-1)).sum())
        seen += y.numel()
        run.step += 1
        bar.update(task, advance=1, status=f"epoch {run.epoch + 1} loss {loss_sum / seen:.4f}")
    return loss_sum / max(seen, 1), correct / max(seen, 1), lr


def train(
    model: nn.Module,
    train_set: Dataset,
    config: TrainConfig = TrainConfig(),
    eval_set: Dataset | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    progress_file: str | Path | None = None,
) -> TrainResult:
    """Train `model` in place with cross-entropy; deterministic for a seed on CPU.

    Works for float models and for emulated ones (that is QAT; see `finetune`). Returns the
    per-epoch history; `on_epoch` is called after every epoch. With `progress_file`, the run's
    whole state (weights, optimizer, data order, random generators) is saved there after every
    epoch, and a run that finds the file continues after its last finished epoch, with the same
    result as an uninterrupted run.
    """
    torch.manual_seed(config.seed)
    run = _Run(_optimizer(model, config), torch.Generator().manual_seed(config.seed))
    path = None if progress_file is None else Path(progress_file)
    if path is not None and path.is_file():
        run.restore(path, model, config)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    if config.max_batches is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_batches)
    with _progress(progress) as bar:
        task = bar.add_task("train", total=steps_per_epoch * config.epochs, completed=run.step, status="")
        while run.epoch < config.epochs:
            start = time.perf_counter()
            loss, train_acc, lr = _epoch(model, train_set, config, run, steps_per_epoch, bar, task)
            run.epoch += 1
            acc = evaluate(model, eval_set) if eval_set is not None else None
            m = EpochMetrics(run.epoch, loss, train_acc, acc, time.perf_counter() - start, lr)
            run.result.history.append(m)
            if path is not None:
                run.save(path, model, config)
            if on_epoch is not None:
                on_epoch(m)
    model.eval()
    return run.result


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, batch_size: int = 1000, limit: int | None = None) -> torch.Tensor:
    """The model's outputs (logits) on a dataset, in eval mode."""
    was_training = model.training
    model.eval()
    outs, done = [], 0
    device = next(model.parameters()).device
    for x, _ in dataset.batches(batch_size):
        if limit is not None and done >= limit:
            break
        outs.append(model(x[: None if limit is None else limit - done].to(device)).cpu())
        done += len(outs[-1])
    model.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0)


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 1000, k: int = 1) -> float:
    """Top-k accuracy of `model` on `dataset`."""
    logits = predict(model, dataset, batch_size)
    return metrics.topk_accuracy(logits, dataset.labels[: len(logits)], k)


def finetune(
    model: nn.Module,
    plan: PrecisionPlan,
    train_set: Dataset,
    config: TrainConfig = QAT_DEFAULTS,
    eval_set: Dataset | None = None,
    calibration: torch.Tensor | None = None,
    progress: bool = False,
) -> tuple[nn.Module, TrainResult]:
    """Quantization-aware fine-tuning: emulate `model` under `plan` (from its float weights),
    train the emulated model (its float parameters are the shadow copy; the forward pass is
    quantized), and return it with the history. `model` itself is not modified."""
    if calibration is None:
        calibration = train_set.tensors(limit=256)[0]
    qmodel = emulate(model, plan, calibration)
    _clip_weights_(qmodel)
    history = train(qmodel, train_set, config, eval_set, progress)
    return qmodel, history


# ---------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> None:
    """Save the state dict and metadata (model name, width, dataset, seed, accuracy, ...),
    atomically. Metadata values must be plain numbers, strings, lists or dicts."""
    info = {"model": getattr(model, "quantscope_name", None), "width": getattr(model, "quantscope_width", 1.0)}
    info.update(meta or {})
    payload = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": info}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a checkpoint, loaded with weights_only=True (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of files it then refuses
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for bad files
        reason = str(err).split("WeightsUnpickler error:")[-1].split(" Check the documentation")[0].strip().splitlines()[0]
        raise ValueError(f"checkpoint {path} cannot be loaded safely (weights only, no code): {reason}") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ValueError(f"checkpoint {path} is not a quantscope checkpoint (no state_dict)")
    return payload["state_dict"], payload.get("meta", {})


def load_weights(model: nn.Module, path: str | Path, what: str) -> nn.Module:
    """Load a checkpoint's weights into `model` (in eval mode); a checkpoint of another network
    is an error naming the checkpoint, the model and what the checkpoint says it holds."""
    state, meta = load_checkpoint(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        held = f" (it holds {meta['model']!r})" if meta.get("model") else ""
        raise ValueError(f"checkpoint {path} does not fit model {what}{held}: {str(err).splitlines()[0]}") from None
    return model.eval()


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a registered network from a checkpoint and load its weights."""
    from . import models

    _, meta = load_checkpoint(path)
    if not meta.get("model"):
        raise ValueError(f"checkpoint {path} does not name its model; build it yourself and load_checkpoint()")
    model = models.create(meta["model"], width=meta.get("width", 1.0))
    return load_weights(model, path, meta["model"]), meta


def check_fits(model: nn.Module, dataset: Dataset, what: str) -> None:
    """Refuse a dataset the model cannot take, before any work: one forward pass on one example,
    and one output per class."""
    x = dataset.tensors(limit=1)[0].to(next(model.parameters(), torch.empty(0)).device)
    mode = model.training
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"model {what} cannot take {dataset.name}'s inputs of shape {tuple(dataset.shape)}: "
                         f"{str(err).splitlines()[0]}") from None
    finally:
        model.train(mode)
    if out.shape[-1] != len(dataset.classes):
        raise ValueError(f"model {what} has {out.shape[-1]} outputs but {dataset.name} has {len(dataset.classes)} classes")

