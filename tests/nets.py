"""Small networks for tests (the registered paper networks live in quantscope.models)."""

import torch
import torch.nn.functional as F
from torch import nn


class LeNetStyle(nn.Module):
    """Caffe LeNet's shape: conv5x5x20, maxpool2, conv5x5x50, maxpool2, fc500, relu, fc10."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2)
        )
        self.fc1 = nn.Linear(800, 500)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.features(x).flatten(1))))


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 4, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        return self.head(self.bn2(self.conv2(x)).flatten(1))


class Functional(nn.Module):
    """A network written with F.conv2d / F.linear on its own parameters (no layer modules)."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.3)
        self.b1 = nn.Parameter(torch.randn(8) * 0.1)
        self.w2 = nn.Parameter(torch.randn(10, 8 * 4 * 4) * 0.1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(F.conv2d(x, self.w1, self.b1, padding=1)), 2)
        return F.linear(x.flatten(1), self.w2)


class TransposedConv(nn.Module):
    """A small decoder: conv, a grouped strided transposed conv (output padding), conv, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.dec = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.out = nn.Conv2d(6, 2, 1)
        self.head = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        return self.head(self.out(torch.relu(self.dec(torch.relu(self.enc(x))))).flatten(1))


class Volumetric(nn.Module):
    """A Conv3d classifier (2 x 5 x 6 x 6 volumes)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=(1, 0, 0), dilation=(1, 1, 1))
        self.fc = nn.Linear(4 * 5 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class PreActBlock(nn.Module):
    """A pre-activation residual block whose conv output also feeds the shortcut add: folding
    bn2 into conv1 would change the add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 6 * 6, 2)

    def forward(self, x):
        y = self.conv1(x)
        z = self.conv2(torch.relu(self.bn2(y)))
        return self.head((y + z).flatten(1))
