"""The papers' small networks, layer for layer, with Caffe-style module names.

Widths scale by `width` (channels and hidden units, never the input or the classes).
"""

from __future__ import annotations

import functools
from collections import OrderedDict

from torch import nn

__all__ = ["lenet", "convnet", "alex", "alex_plus", "alex_plus_plus", "cifarnet", "mlp", "sakr_cnn", "digits_cnn"]


def _w(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _seq(*layers: tuple[str, nn.Module]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def lenet(width: float = 1.0) -> nn.Sequential:
    """Caffe LeNet (MNIST): conv5x5x20, maxpool2, conv5x5x50, maxpool2, fc500, relu, fc10."""
    c1, c2, h = _w(20, width), _w(50, width), _w(500, width)
    return _seq(
        ("conv1", nn.Conv2d(1, c1, 5)), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 5)), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c2 * 4 * 4, h)), ("relu1", nn.ReLU()),
        ("ip2", nn.Linear(h, 10)),
    )


def convnet(width: float = 1.0) -> nn.Sequential:
    """Hashemi's SVHN ConvNet (Table I): conv5x5x16, maxpool2, conv7x7x512, maxpool2, fc20, fc10."""
    c1, c2, h = _w(16, width), _w(512, width), _w(20, width)
    return _seq(
        ("conv1", nn.Conv2d(3, c1, 5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 7)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c2 * 4 * 4, h)), ("relu3", nn.ReLU()),
        ("ip2", nn.Linear(h, 10)),
    )


def _cifar10_full(channels: tuple[int, int, int], width: float) -> nn.Sequential:
    """Caffe's cifar10_full: conv5x5 pad 2 with max/avg 3x3 stride-2 pooling (ceil mode) and LRN."""
    c1, c2, c3 = (_w(c, width) for c in channels)
    lrn = functools.partial(nn.LocalResponseNorm, 3, alpha=5e-5, beta=0.75, k=1.0)
    return _seq(
        ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("relu1", nn.ReLU()), ("norm1", lrn()),
        ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)), ("norm2", lrn()),
        ("conv3", nn.Conv2d(c2, c3, 5, padding=2)), ("relu3", nn.ReLU()),
        ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c3 * 4 * 4, 10)),
    )


def alex(width: float = 1.0) -> nn.Sequential:
    """Hashemi's ALEX (Table I) = Caffe cifar10_full: conv 32-32-64, fc10."""
    return _cifar10_full((32, 32, 64), width)


def alex_plus(width: float = 1.0) -> nn.Sequential:
    """ALEX+ (Hashemi Table II): every conv layer's channels doubled (64-64-128)."""
    return _cifar10_full((64, 64, 128), width)


def alex_plus_plus(width: float = 1.0) -> nn.Sequential:
    """ALEX++ (Hashemi Table II): conv3x3 64-128-256 with maxpool2, fc512, fc10 (channels double
    when the feature map halves)."""
    c1, c2, c3, h = (_w(c, width) for c in (64, 128, 256, 512))
    return _seq(
        ("conv1", nn.Conv2d(3, c1, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()), ("pool3", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c3 * 4 * 4, h)), ("relu4", nn.ReLU()),
        ("ip2", nn.Linear(h, 10)),
    )


def cifarnet(width: float = 1.0) -> nn.Sequential:
    """Caffe's cifar10_quick ("Convnet"/"CIFARNET" of Judd and Hill): conv 32-32-64, fc64, fc10."""
    c1, c2, c3, h = (_w(c, width) for c in (32, 32, 64, 64))
    return _seq(
        ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()), ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ("conv3", nn.Conv2d(c2, c3, 5, padding=2)), ("relu3", nn.ReLU()), ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c3 * 4 * 4, h)),
        ("ip2", nn.Linear(h, 10)),
    )


def mlp(width: float = 1.0, dropout: float = 0.2) -> nn.Sequential:
    """Sakr's MNIST MLP 784-512-512-512-10; activations clipped to [0, 2] (a ReLU with a right
    rectifier at 2). Training clips the weights to [-1, 1] (`weight_clip`)."""
    h = _w(512, width)
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    size = 784
    for i in range(1, 4):
        layers += [(f"fc{i}", nn.Linear(size, h)), (f"act{i}", nn.Hardtanh(0.0, 2.0)), (f"drop{i}", nn.Dropout(dropout))]
        size = h
    layers.append(("fc4", nn.Linear(size, 10)))
    model = _seq(*layers)
    model.weight_clip = 1.0  # type: ignore[assignment]
    return model


def sakr_cnn(width: float = 1.0) -> nn.Sequential:
    """A Sakr-style CIFAR-10 CNN: pairs of 3x3 and 1x1 convolutions (network-in-network),
    2x2 max pooling, a fully connected layer; activations clipped to [0, 2].

    The exact layer string of Sakr et al. was lost in the text extraction; this follows its
    description (C3-C1 pairs, MP2, FC) with widths 64-128-256 and a 512-unit FC layer.
    """
    c1, c2, c3, h = (_w(c, width) for c in (64, 128, 256, 512))
    layers: list[tuple[str, nn.Module]] = []
    cin = 3
    for i, c in enumerate((c1, c2, c3), start=1):
        layers += [
            (f"conv{i}a", nn.Conv2d(cin, c, 3, padding=1)), (f"act{i}a", nn.Hardtanh(0.0, 2.0)),
            (f"conv{i}b", nn.Conv2d(c, c, 1)), (f"act{i}b", nn.Hardtanh(0.0, 2.0)),
            (f"pool{i}", nn.MaxPool2d(2)),
        ]
        cin = c
    layers += [("flatten", nn.Flatten()), ("fc1", nn.Linear(c3 * 4 * 4, h)), ("act4", nn.Hardtanh(0.0, 2.0)), ("fc2", nn.Linear(h, 10))]
    return _seq(*layers)


def digits_cnn(width: float = 1.0) -> nn.Sequential:
    """A small CNN for scikit-learn's 8x8 digits (the offline demo): conv3x3x16, conv3x3x32, fc10."""
    c1, c2 = _w(16, width), _w(32, width)
    return _seq(
        ("conv1", nn.Conv2d(1, c1, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("ip1", nn.Linear(c2 * 4 * 4, 10)),
    )
