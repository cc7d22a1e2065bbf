"""The papers' networks: parameter memory against the papers, shapes, widths, Judd's grouping."""

from __future__ import annotations

import pytest
import torch

import quantscope as qs
from quantscope import models

# Hashemi et al.: "network parameters require approximately 1650KB, 2150KB and 350KB ... for LeNet,
# CONVnet and ALEX" and "roughly 350KB, 1250KB and 9400KB for ALEX, ALEX+ and ALEX++" (32 bits)
HASHEMI_KB = {"lenet": 1650, "convnet": 2150, "alex": 350, "alex+": 1250, "alex++": 9400}


@pytest.mark.parametrize("name,kb", HASHEMI_KB.items())
def test_parameter_memory_at_32_bits_is_within_5_percent_of_hashemi(name, kb):
    model = models.create(name)
    kib = sum(p.numel() for p in model.parameters()) * 4 / 1024
    assert abs(kib - kb) / kb < 0.05, f"{name}: {kib:.0f} KiB vs {kb} KB"


@pytest.mark.parametrize("name", models.names())
def test_every_network_runs_on_its_input_shape(name):
    imagenet = models.info(name).dataset == "imagenet"
    device = "meta" if imagenet else None
    model = models.create(name, device=device)
    out = model.eval()(models.example_input(name, 2, device=device))
    if models.info(name).input_dtype == torch.long:  # a language model: next-token logits per position
        assert tuple(out.shape) == (2, *models.info(name).input_shape, 256)
    else:
        assert tuple(out.shape) == (2, 1000 if imagenet else 10)


def test_known_sizes_of_the_imagenet_networks():
    def count(name):
        return sum(p.numel() for p in models.create(name, device="meta").parameters())

    assert count("alexnet") == 60_965_224 and count("vgg16") == 138_357_544
    macs = sum(l.macs for l in qs.layers(models.create("vgg16", device="meta"), models.example_input("vgg16", device="meta")))
    assert abs(macs / 15.47e9 - 1) < 0.01


def test_width_multiplier_scales_channels_and_hidden_units_only():
    base, wide = models.create("lenet"), models.create("lenet", width=2)
    assert (wide.conv1.out_channels, wide.ip1.out_features, wide.ip2.out_features) == (40, 1000, 10)
    assert wide.conv1.in_channels == base.conv1.in_channels == 1
    assert models.create("alex", width=2).conv3.out_channels == models.create("alex+").conv3.out_channels
    with pytest.raises(ValueError, match="width must be a positive number"):
        models.create("lenet", width=0)


def test_judd_grouping_of_table_3():
    alexnet = models.create("alexnet", device="meta")
    info = qs.layers(alexnet, models.example_input("alexnet", device="meta"))
    assert [(l.name, l.followers) for l in info[:3]] == [
        ("conv1", ("relu1", "pool1", "norm1")), ("conv2", ("relu2", "pool2", "norm2")), ("conv3", ("relu3",))]
    assert info[5].followers[:2] == ("relu6", "drop6")
    cifarnet = qs.layers(models.create("cifarnet"), models.example_input("cifarnet"))
    assert [l.followers for l in cifarnet] == [("pool1", "relu1"), ("relu2", "pool2"), ("relu3", "pool3", "flatten"), (), ()]
    g = models.create("googlenet", device="meta")
    ginfo = qs.layers(g, models.example_input("googlenet", device="meta"), groups=models.judd_groups("googlenet", g))
    assert list(dict.fromkeys(l.group for l in ginfo)) == ["conv1", "conv2"] + [f"inception_{k}" for k in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]


def test_unknown_model_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown model 'lenet5' \(did you mean 'lenet'\?\)"):
        models.create("lenet5")


def test_seeded_creation_is_reproducible():
    a, b = models.create("cifarnet", seed=3), models.create("cifarnet", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
