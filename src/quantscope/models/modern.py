"""Today's small networks, sized for 2 CPU cores: residual, depthwise, attention, recurrent, a GPT.

- `resnet20`: He et al. 2016's CIFAR ResNet-20 (3 stages of 3 basic blocks, 16-32-64 channels,
  BatchNorm, identity shortcuts with zero-padding where the width doubles: option A), 0.27M
  parameters.
- `mobilenetv2`: a MobileNetV2-style network (Sandler et al. 2018: inverted residual blocks with
  depthwise 3x3 convolutions, linear bottlenecks, ReLU6), reduced for CIFAR-10 (5 stages,
  16-24-32-64-96 channels, expansion 6, 256-channel head).
- `vit` / `vit-mha`: a small Vision Transformer (patch 4, 64 tokens + a class token, width 64,
  4 pre-norm blocks of 4 heads, MLP 128); `vit` is built from `nn.TransformerEncoderLayer`,
  `vit-mha` from `nn.MultiheadAttention`, `nn.LayerNorm` and linear layers (the same function).
- `lstm-mnist` / `gru-mnist`: sequential MNIST, one 28-pixel row per time step, a 128-unit
  recurrent layer and a linear classifier on the last hidden state.
- `gpt-char` / `gpt-char-matmul`: a character (byte) level GPT (vocabulary 256, context 64, width
  128, 4 pre-norm blocks of 4 heads, tied input and output embeddings); `gpt-char` attends with
  `F.scaled_dot_product_attention` (causal), `gpt-char-matmul` with explicit matmuls, a mask and
  a softmax.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["resnet20", "mobilenetv2", "vit", "vit_mha", "lstm_mnist", "gru_mnist", "gpt_char", "gpt_char_matmul"]


def _w(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


# ------------------------------------------------------------------------------- ResNet-20
class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut, then ReLU (option A shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.pad:
            shortcut = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20."""

    def __init__(self, width: float = 1.0, classes: int = 10) -> None:
        super().__init__()
        c = [_w(16, width), _w(32, width), _w(64, width)]
        self.conv = nn.Conv2d(3, c[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c[0])
        blocks, cin = [], c[0]
        for stage, cout in enumerate(c):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, 2 if stage and i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet20(width: float = 1.0) -> nn.Module:
    """CIFAR ResNet-20 (He et al. 2016, Section 4.2)."""
    return ResNet20(width)


# ----------------------------------------------------------------------------- MobileNetV2
class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def mobilenetv2(width: float = 1.0, classes: int = 10) -> nn.Sequential:
    """MobileNetV2-style network for 32x32 inputs (see the module docstring)."""
    stages = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1)]
    cin = _w(16, width)
    layers: list[nn.Module] = [nn.Conv2d(3, cin, 3, 1, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6()]
    for t, c, n, s in stages:
        for i in range(n):
            layers.append(InvertedResidual(cin, _w(c, width), s if i == 0 else 1, t))
            cin = _w(c, width)
    head = _w(256, width)
    layers += [nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(head, classes)]
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------ ViT
class MhaBlock(nn.Module):
    """A pre-norm transformer block written with nn.MultiheadAttention (what
    nn.TransformerEncoderLayer(norm_first=True, activation="gelu") computes)."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Patch embedding (a strided convolution), class token, position embedding, blocks, head."""

    def __init__(self, width: float = 1.0, spelling: str = "encoder-layer", image: int = 32, channels: int = 3,
                 patch: int = 4, classes: int = 10) -> None:
        super().__init__()
        dim, mlp, heads, depth = _w(64, width), _w(128, width), 4, 4
        dim = max(heads, dim - dim % heads)
        self.patch = nn.Conv2d(channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        if spelling == "encoder-layer":
            self.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu",
                                                                     batch_first=True, norm_first=True) for _ in range(depth)])
        elif spelling == "mha":
            self.blocks = nn.Sequential(*[MhaBlock(dim, heads, mlp) for _ in range(depth)])
        else:
            raise ValueError(f"ViT spelling must be 'encoder-layer' or 'mha', got {spelling!r}")
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1) + self.pos
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def vit(width: float = 1.0) -> nn.Module:
    """Small ViT from nn.TransformerEncoderLayer (CIFAR-10)."""
    return ViT(width, "encoder-layer")


def vit_mha(width: float = 1.0) -> nn.Module:
    """The same ViT written with nn.MultiheadAttention blocks."""
    return ViT(width, "mha")


# -------------------------------------------------------------------------------- recurrent
class SequentialMnist(nn.Module):
    """Rows of a 28x28 image as 28 time steps into a recurrent layer; a classifier on the last state."""

    def __init__(self, cell: str, width: float = 1.0, hidden: int = 128, classes: int = 10) -> None:
        super().__init__()
        h = _w(hidden, width)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(28, h, batch_first=True)
        self.fc = nn.Linear(h, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.reshape(len(x), 28, 28))
        return self.fc(out[:, -1])


def lstm_mnist(width: float = 1.0) -> nn.Module:
    """LSTM on sequential MNIST (one row per step)."""
    return SequentialMnist("lstm", width)


def gru_mnist(width: float = 1.0) -> nn.Module:
    """GRU on sequential MNIST (one row per step)."""
    return SequentialMnist("gru", width)


# ------------------------------------------------------------------------------------- GPT
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one qkv projection (nanoGPT's layout)."""

    mask: torch.Tensor

    def __init__(self, dim: int, heads: int, context: int, spelling: str) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.heads = heads
        self.spelling = spelling
        self.register_buffer("mask", torch.ones(context, context, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = (z.view(n, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(x).split(d, 2))
        if self.spelling == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.heads))
            att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
            y = torch.softmax(att, -1) @ v
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


class GptBlock(nn.Module):
    """Pre-norm block: x + attn(ln(x)), x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, context: int, spelling: str) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, context, spelling)
        self.ln2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class CharGPT(nn.Module):
    """A byte-level GPT: token and position embeddings, blocks, final norm, tied output head."""

    def __init__(self, width: float = 1.0, spelling: str = "sdpa", vocab: int = 256, context: int = 64, depth: int = 4) -> None:
        super().__init__()
        heads = 4
        dim = max(heads, _w(128, width) - _w(128, width) % heads)
        if spelling not in ("sdpa", "matmul"):
            raise ValueError(f"GPT attention spelling must be 'sdpa' or 'matmul', got {spelling!r}")
        self.context = context
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*[GptBlock(dim, heads, context, spelling) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of {t} tokens is longer than the context of {self.context}")
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        return self.lm_head(self.ln(self.blocks(x)))


def gpt_char(width: float = 1.0) -> nn.Module:
    """Byte-level GPT attending with scaled_dot_product_attention."""
    return CharGPT(width, "sdpa")


def gpt_char_matmul(width: float = 1.0) -> nn.Module:
    """The same GPT with explicit matmul, mask and softmax attention."""
    return CharGPT(width, "matmul")
