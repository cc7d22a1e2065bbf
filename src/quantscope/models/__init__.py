"""The papers' reference networks, registered by name: `create("lenet")`, `names()`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import did_you_mean
from . import imagenet, modern, papers


@dataclass(frozen=True)
class ModelInfo:
    """What a registered network is for: its input, dataset, source, preprocessing."""

    name: str
    build: Callable[..., nn.Module]
    input_shape: tuple[int, ...]
    dataset: str
    source: str
    normalize: str = "standard"
    groups: Callable[[nn.Module], dict[str, list[str]]] | None = None
    input_dtype: torch.dtype = torch.float32


_REGISTRY: dict[str, ModelInfo] = {}


def register(info: ModelInfo) -> None:
    """Add a network to the registry (names are unique)."""
    if info.name in _REGISTRY:
        raise ValueError(f"a model named {info.name!r} is already registered")
    _REGISTRY[info.name] = info


for _info in [
    ModelInfo("lenet", papers.lenet, (1, 28, 28), "mnist", "Caffe LeNet; Hashemi Table I, Judd, Hill", "unit"),
    ModelInfo("convnet", papers.convnet, (3, 32, 32), "svhn", "Hashemi Table I (SVHN)"),
    ModelInfo("alex", papers.alex, (3, 32, 32), "cifar10", "Hashemi Table I = Caffe cifar10_full"),
    ModelInfo("alex+", papers.alex_plus, (3, 32, 32), "cifar10", "Hashemi Table II"),
    ModelInfo("alex++", papers.alex_plus_plus, (3, 32, 32), "cifar10", "Hashemi Table II"),
    ModelInfo("cifarnet", papers.cifarnet, (3, 32, 32), "cifar10", "Caffe cifar10_quick; Judd 'convnet', Hill 'CIFARNET'"),
    ModelInfo("mlp", papers.mlp, (1, 28, 28), "mnist", "Sakr et al. MNIST 784-512-512-512-10", "unit"),
    ModelInfo("sakr-cnn", papers.sakr_cnn, (3, 32, 32), "cifar10", "Sakr et al. CIFAR-10 CNN (style)"),
    ModelInfo("digits-cnn", papers.digits_cnn, (1, 8, 8), "digits", "small CNN for the offline demo"),
    ModelInfo("alexnet", imagenet.alexnet, (3, 227, 227), "imagenet", "Caffe bvlc_alexnet; Judd Table 3"),
    ModelInfo("nin", imagenet.nin, (3, 224, 224), "imagenet", "Caffe NIN ImageNet; Judd Table 3"),
    ModelInfo("googlenet", imagenet.googlenet, (3, 224, 224), "imagenet", "Caffe bvlc_googlenet; Judd Table 3", groups=imagenet.googlenet_groups),
    ModelInfo("vgg16", imagenet.vgg16, (3, 224, 224), "imagenet", "VGG-16 configuration D"),
    ModelInfo("resnet20", modern.resnet20, (3, 32, 32), "cifar10", "He et al. 2016 CIFAR ResNet-20 (BatchNorm, residual adds)"),
    ModelInfo("mobilenetv2", modern.mobilenetv2, (3, 32, 32), "cifar10", "MobileNetV2-style (Sandler et al. 2018), reduced for CIFAR"),
    ModelInfo("vit", modern.vit, (3, 32, 32), "cifar10", "small ViT from nn.TransformerEncoderLayer"),
    ModelInfo("vit-mha", modern.vit_mha, (3, 32, 32), "cifar10", "the same ViT from nn.MultiheadAttention blocks"),
    ModelInfo("lstm-mnist", modern.lstm_mnist, (1, 28, 28), "mnist", "LSTM on sequential MNIST (a row per step)"),
    ModelInfo("gru-mnist", modern.gru_mnist, (1, 28, 28), "mnist", "GRU on sequential MNIST (a row per step)"),
    ModelInfo("gpt-char", modern.gpt_char, (64,), "fortunes", "byte-level GPT, scaled_dot_product_attention", input_dtype=torch.long),
    ModelInfo("gpt-char-matmul", modern.gpt_char_matmul, (64,), "fortunes", "byte-level GPT, explicit matmul attention",
              input_dtype=torch.long),
]:
    register(_info)


def names() -> list[str]:
    """Registered network names."""
    return sorted(_REGISTRY)


def info(name: str) -> ModelInfo:
    """A registered network's description; unknown names suggest the closest."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}{did_you_mean(name, _REGISTRY)}; registered: {', '.join(names())}")
    return _REGISTRY[name]


def create(name: str, width: float = 1.0, device: str | torch.device | None = None, seed: int | None = None) -> nn.Module:
    """Build a registered network; `width` multiplies channels and hidden units.

    `device="meta"` builds it without memory (for shapes and costs); `seed` makes the random
    initialization reproducible.
    """
    spec = info(name)
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"width must be a positive number, got {width!r}")
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = spec.build(width)
    model.quantscope_name = name  # type: ignore[assignment]
    model.quantscope_width = float(width)  # type: ignore[assignment]
    return model


def example_input(name: str, batch: int = 1, device: str | torch.device | None = None) -> torch.Tensor:
    """A zero batch of the network's input shape (token ids for language models)."""
    spec = info(name)
    return torch.zeros(batch, *spec.input_shape, dtype=spec.input_dtype, device=device)


def judd_groups(name: str, model: nn.Module | None = None) -> dict[str, list[str]] | None:
    """Judd's layer grouping as an explicit map, or None where the grouping rule gives it."""
    spec = info(name)
    if spec.groups is None:
        return None
    return spec.groups(model if model is not None else create(name, device="meta"))


__all__ = ["ModelInfo", "create", "example_input", "info", "judd_groups", "names", "register"]
