"""ImageNet-shaped networks for cost analysis (Judd Table 3), with Caffe's module names.

They are built without trained weights; create them on the "meta" device to get shapes, weight
counts and MACs without allocating memory.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
from torch import nn

from .papers import _w

__all__ = ["alexnet", "nin", "Inception", "googlenet", "vgg16", "googlenet_groups"]


def alexnet(width: float = 1.0) -> nn.Sequential:
    """Caffe's bvlc_alexnet (227x227 input, grouped conv2/4/5)."""
    c = [_w(v, width) for v in (96, 256, 384, 384, 256)]
    h = _w(4096, width)
    lrn = functools.partial(nn.LocalResponseNorm, 5, alpha=1e-4, beta=0.75, k=1.0)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, c[0], 11, stride=4)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(3, 2)), ("norm1", lrn()),
        ("conv2", nn.Conv2d(c[0], c[1], 5, padding=2, groups=2)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(3, 2)), ("norm2", lrn()),
        ("conv3", nn.Conv2d(c[1], c[2], 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(c[2], c[3], 3, padding=1, groups=2)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(c[3], c[4], 3, padding=1, groups=2)), ("relu5", nn.ReLU()), ("pool5", nn.MaxPool2d(3, 2)),
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(c[4] * 6 * 6, h)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
        ("fc7", nn.Linear(h, h)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
        ("fc8", nn.Linear(h, 1000)),
    ]))


def nin(width: float = 1.0) -> nn.Sequential:
    """Caffe's Network-in-Network ImageNet model (224x224 input, global average pooling)."""
    a, b, c, d = (_w(v, width) for v in (96, 256, 384, 1024))
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, a, 11, stride=4)), ("relu0", nn.ReLU()),
        ("cccp1", nn.Conv2d(a, a, 1)), ("relu1", nn.ReLU()),
        ("cccp2", nn.Conv2d(a, a, 1)), ("relu2", nn.ReLU()), ("pool0", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv2", nn.Conv2d(a, b, 5, padding=2)), ("relu3", nn.ReLU()),
        ("cccp3", nn.Conv2d(b, b, 1)), ("relu5", nn.ReLU()),
        ("cccp4", nn.Conv2d(b, b, 1)), ("relu6", nn.ReLU()), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
        ("conv3", nn.Conv2d(b, c, 3, padding=1)), ("relu7", nn.ReLU()),
        ("cccp5", nn.Conv2d(c, c, 1)), ("relu8", nn.ReLU()),
        ("cccp6", nn.Conv2d(c, c, 1)), ("relu9", nn.ReLU()), ("pool3", nn.MaxPool2d(3, 2, ceil_mode=True)), ("drop", nn.Dropout()),
        ("conv4-1024", nn.Conv2d(c, d, 3, padding=1)), ("relu10", nn.ReLU()),
        ("cccp7-1024", nn.Conv2d(d, d, 1)), ("relu11", nn.ReLU()),
        ("cccp8-1024", nn.Conv2d(d, 1000, 1)), ("relu12", nn.ReLU()), ("pool4", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
    ]))


class Inception(nn.Module):
    """GoogLeNet's inception module: 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches, concatenated."""

    def __init__(self, cin: int, n1: int, r3: int, n3: int, r5: int, n5: int, pp: int) -> None:
        super().__init__()
        relu = nn.ReLU
        self.add_module("1x1", nn.Conv2d(cin, n1, 1))
        self.add_module("relu_1x1", relu())
        self.add_module("3x3_reduce", nn.Conv2d(cin, r3, 1))
        self.add_module("relu_3x3_reduce", relu())
        self.add_module("3x3", nn.Conv2d(r3, n3, 3, padding=1))
        self.add_module("relu_3x3", relu())
        self.add_module("5x5_reduce", nn.Conv2d(cin, r5, 1))
        self.add_module("relu_5x5_reduce", relu())
        self.add_module("5x5", nn.Conv2d(r5, n5, 5, padding=2))
        self.add_module("relu_5x5", relu())
        self.add_module("pool", nn.MaxPool2d(3, 1, padding=1))
        self.add_module("pool_proj", nn.Conv2d(cin, pp, 1))
        self.add_module("relu_pool_proj", relu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m: dict[str, nn.Module] = self._modules  # type: ignore[assignment]
        b1 = m["relu_1x1"](m["1x1"](x))
        b3 = m["relu_3x3"](m["3x3"](m["relu_3x3_reduce"](m["3x3_reduce"](x))))
        b5 = m["relu_5x5"](m["5x5"](m["relu_5x5_reduce"](m["5x5_reduce"](x))))
        bp = m["relu_pool_proj"](m["pool_proj"](m["pool"](x)))
        return torch.cat([b1, b3, b5, bp], 1)


_INCEPTIONS = [
    ("inception_3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception_3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception_4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception_4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception_4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception_4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception_4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception_5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception_5b", 832, 384, 192, 384, 48, 128, 128),
]


def googlenet(width: float = 1.0) -> nn.Sequential:
    """Caffe's bvlc_googlenet (224x224 input; the auxiliary classifiers are omitted)."""
    w = lambda v: _w(v, width)  # noqa: E731
    lrn = functools.partial(nn.LocalResponseNorm, 5, alpha=1e-4, beta=0.75, k=1.0)
    layers: list[tuple[str, nn.Module]] = [
        ("conv1/7x7_s2", nn.Conv2d(3, w(64), 7, stride=2, padding=3)), ("conv1/relu_7x7", nn.ReLU()),
        ("pool1/3x3_s2", nn.MaxPool2d(3, 2, ceil_mode=True)), ("pool1/norm1", lrn()),
        ("conv2/3x3_reduce", nn.Conv2d(w(64), w(64), 1)), ("conv2/relu_3x3_reduce", nn.ReLU()),
        ("conv2/3x3", nn.Conv2d(w(64), w(192), 3, padding=1)), ("conv2/relu_3x3", nn.ReLU()),
        ("conv2/norm2", lrn()), ("pool2/3x3_s2", nn.MaxPool2d(3, 2, ceil_mode=True)),
    ]
    for name, cin, *sizes in _INCEPTIONS:
        layers.append((name, Inception(w(cin), *(w(s) for s in sizes))))
        if name == "inception_3b":
            layers.append(("pool3/3x3_s2", nn.MaxPool2d(3, 2, ceil_mode=True)))
        if name == "inception_4e":
            layers.append(("pool4/3x3_s2", nn.MaxPool2d(3, 2, ceil_mode=True)))
    layers += [
        ("pool5/7x7_s1", nn.AdaptiveAvgPool2d(1)), ("pool5/drop_7x7_s1", nn.Dropout(0.4)),
        ("flatten", nn.Flatten()), ("loss3/classifier", nn.Linear(w(1024), 1000)),
    ]
    return nn.Sequential(OrderedDict(layers))


def vgg16(width: float = 1.0) -> nn.Sequential:
    """VGG-16 (configuration D, 224x224 input)."""
    layers: list[tuple[str, nn.Module]] = []
    cin = 3
    for block, (channels, repeat) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, repeat + 1):
            c = _w(channels, width)
            layers += [(f"conv{block}_{i}", nn.Conv2d(cin, c, 3, padding=1)), (f"relu{block}_{i}", nn.ReLU())]
            cin = c
        layers.append((f"pool{block}", nn.MaxPool2d(2)))
    h = _w(4096, width)
    layers += [
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(cin * 7 * 7, h)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout()),
        ("fc7", nn.Linear(h, h)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout()),
        ("fc8", nn.Linear(h, 1000)),
    ]
    return nn.Sequential(OrderedDict(layers))


def googlenet_groups(model: nn.Module) -> dict[str, list[str]]:
    """Judd's 11 GoogLeNet layers: conv1/*, conv2/*, then one per inception module. Pooling and
    the classifier join the preceding group."""
    groups: dict[str, list[str]] = {}
    current = None
    for name, _ in model.named_children():
        head = name.split("/")[0]
        if head in ("conv1", "conv2") or head.startswith("inception_"):
            current = head
        assert current is not None
        if isinstance(model.get_submodule(name), Inception):
            groups.setdefault(current, []).extend(f"{name}.{child}" for child, _ in model.get_submodule(name).named_children())
        else:
            groups.setdefault(current, []).append(name)
    return groups
