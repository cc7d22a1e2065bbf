"""BatchNorm folding: exact where the producing op feeds only the BatchNorm, refused (and named)
elsewhere."""

from __future__ import annotations

import pytest
import torch
from nets import PreActBlock
from torch import nn

import quantscope as qs
from quantscope import PrecisionPlan, models


def _with_statistics(model, shape):
    torch.manual_seed(4)
    model.train()
    for _ in range(3):
        model(torch.randn(shape) * 2 + 1)
    return model.eval()


def test_a_batchnorm_whose_input_also_feeds_a_residual_add_is_not_folded():
    model = _with_statistics(PreActBlock(), (8, 4, 6, 6))
    x = torch.randn(3, 4, 6, 6)
    with pytest.warns(UserWarning, match=r"bn2: the output of 'conv1' also feeds add"):
        folded = qs.fold_batchnorm(model, x)
    assert isinstance(folded.bn2, nn.BatchNorm2d)
    with torch.no_grad():
        assert torch.equal(folded(x), model(x))
    with pytest.warns(UserWarning, match="BatchNorm not folded"):
        q = qs.emulate(model, PrecisionPlan(), calibration=x, fold_bn=True)
    assert q.unfolded == ("bn2: the output of 'conv1' also feeds add",)


@pytest.mark.parametrize("layer,bn,shape", [
    (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), nn.BatchNorm2d(6), (5, 4, 5, 5)),
    (nn.Conv1d(4, 6, 3, groups=2), nn.BatchNorm1d(6), (5, 4, 9)),
    (nn.Linear(4, 6), nn.BatchNorm1d(6), (5, 4)),
    (nn.Conv2d(6, 6, 3, groups=6, bias=False), nn.BatchNorm2d(6), (5, 6, 5, 5)),
])
def test_folding_transposed_grouped_and_linear_layers_keeps_the_function(layer, bn, shape):
    model = _with_statistics(nn.Sequential(layer, bn, nn.ReLU()), shape)
    x = torch.randn(shape)
    folded = qs.fold_batchnorm(model, x)
    assert isinstance(folded[1], nn.Identity) and isinstance(model[1], type(bn))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_resnet20_folds_every_batchnorm_and_keeps_its_function():
    model = _with_statistics(models.create("resnet20", seed=0), (4, 3, 32, 32))
    x = torch.randn(2, 3, 32, 32)
    folded = qs.fold_batchnorm(model, x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
