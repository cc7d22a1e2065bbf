"""Small networks for tests (the registered paper networks live in quantscope.models)."""

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
