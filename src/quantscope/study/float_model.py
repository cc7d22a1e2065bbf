"""A study's float network: built from the registry or a user's factory, with weights from a
checkpoint or from float training cached under a hash of everything it depends on."""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import data, models
from ..search.evaluate import dataset_digest, tensor_digest
from ..store import content_key
from ..train import check_fits, load_weights, save_checkpoint, torch_threads, train
from .config import ModelSettings, StudyConfig

__all__ = ["FloatModel", "float_model", "cache_dir", "normalization"]


def cache_dir() -> Path:
    """Where trained float models are cached: $QUANTSCOPE_CACHE or ~/.cache/quantscope."""
    return Path(os.environ.get("QUANTSCOPE_CACHE") or Path.home() / ".cache" / "quantscope")


def _load_factory(settings: ModelSettings, base: Path) -> Callable[[], nn.Module]:
    """The callable a `module: "pkg.mod:factory"` or `"file.py:factory"` setting names."""
    assert settings.module is not None
    where, factory = settings.module.rsplit(":", 1)
    if where.endswith(".py"):
        path = (base / where).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise FileNotFoundError(f"model module file {str(path)!r} does not exist")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, factory):
        raise ValueError(f"model module {where!r} has no {factory!r}")
    return getattr(module, factory)


def _build(settings: ModelSettings, base: Path) -> nn.Module:
    if settings.name is not None:
        return models.create(settings.name, width=settings.width, seed=0)
    model = _load_factory(settings, base)()
    if not isinstance(model, nn.Module):
        raise ValueError(f"{settings.module} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def normalization(cfg: StudyConfig) -> str:
    """The input normalization of the study's model ("standard" or "unit")."""
    if cfg.model.normalize:
        return cfg.model.normalize
    return models.info(cfg.model.name).normalize if cfg.model.name else "standard"


@dataclass
class FloatModel:
    """The float network, where its weights came from, and the training time it took."""

    model: nn.Module
    checkpoint: Path
    trained: bool
    seconds: float


def float_model(cfg: StudyConfig, base: Path, train_set: data.Dataset, log: Callable[[str], None]) -> FloatModel:
    """The study's float network: from its checkpoint, or trained once (resumably: the run's
    state is saved after every epoch) and cached under a hash of the architecture, initial
    weights, training data, settings and torch version."""
    model = _build(cfg.model, base)
    what = cfg.model.name or cfg.model.module or "the model"
    check_fits(model, train_set, what)
    if cfg.model.checkpoint is not None:
        path = (base / cfg.model.checkpoint).resolve()
        return FloatModel(load_weights(model, path, what), path, False, 0.0)
    assert cfg.train is not None
    key = content_key("float-model", repr(model), {k: tensor_digest(v) for k, v in model.state_dict().items()},
                      dataset_digest(train_set), cfg.train.model_dump(), torch.__version__)
    path = cache_dir() / "models" / f"{key[:32]}.pt"
    if path.is_file():
        log(f"float model: cached {path}")
        return FloatModel(load_weights(model, path, what), path, False, 0.0)
    log(f"float model: training {cfg.train.epochs} epochs (cached afterwards as {path})")
    start = time.perf_counter()
    progress = path.with_name(path.name + ".progress")
    with torch_threads(cfg.train.threads):
        train(model, train_set, cfg.train.config(), progress=True, progress_file=progress)
    save_checkpoint(path, model, {"model": cfg.model.name, "width": cfg.model.width, "dataset": cfg.dataset.name,
                                  "normalize": normalization(cfg)})
    progress.unlink(missing_ok=True)
    return FloatModel(model.eval(), path, True, time.perf_counter() - start)
