"""Accuracy, decision mismatch between two models, and last-layer R^2 (Hill)."""

from __future__ import annotations

import torch


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Fraction of examples whose label is among the k largest logits."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"k must be between 1 and {logits.shape[1]}, got {k}")
    top = logits.topk(k, dim=1).indices
    return float((top == labels.unsqueeze(1)).any(1).float().mean()) if labels.numel() else 0.0


def mismatch_rate(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of examples on which two models decide differently (Sakr's p_m, measured)."""
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    return float((logits_a.argmax(1) != logits_b.argmax(1)).float().mean()) if logits_a.numel() else 0.0


def r_squared(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Coefficient of determination of `other` as a prediction of `reference`, over all
    elements: 1 - sum (ref - other)^2 / sum (ref - mean(ref))^2 (Hill's last-layer R^2)."""
    if reference.shape != other.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(other.shape)}")
    ref, oth = reference.detach().double().flatten(), other.detach().double().flatten()
    total = float(((ref - ref.mean()) ** 2).sum())
    residual = float(((ref - oth) ** 2).sum())
    if total == 0.0:
        return 1.0 if residual == 0.0 else float("-inf")
    return 1.0 - residual / total
