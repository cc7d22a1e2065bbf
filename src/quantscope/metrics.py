"""Accuracy, decision mismatch between two models, last-layer R^2 (Hill), bits per token.

Outputs may be classifier logits (N, C) or a language model's per-position logits (N, T, V): then
every position is one decision (accuracy and mismatch are over all N * T next-token predictions).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["topk_accuracy", "mismatch_rate", "decision_mismatch", "r_squared", "bits_per_token"]


def _decisions(logits: torch.Tensor) -> torch.Tensor:
    """(N, C) or (N, T, V) logits as (decisions, classes)."""
    return logits.reshape(-1, logits.shape[-1])


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Fraction of decisions whose label is among the k largest logits."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"k must be between 1 and {logits.shape[-1]}, got {k}")
    flat, target = _decisions(logits), labels.reshape(-1)
    top = flat.topk(k, dim=1).indices
    return float((top == target.unsqueeze(1)).any(1).float().mean()) if target.numel() else 0.0


def mismatch_rate(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of decisions on which two models differ (Sakr's p_m, measured)."""
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"shapes differ: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    return decision_mismatch(logits_a.argmax(-1), logits_b.argmax(-1))


def decision_mismatch(decisions_a: torch.Tensor, decisions_b: torch.Tensor) -> float:
    """Fraction of positions where two tensors of decisions (argmax indices) differ."""
    if decisions_a.shape != decisions_b.shape:
        raise ValueError(f"shapes differ: {tuple(decisions_a.shape)} vs {tuple(decisions_b.shape)}")
    return float((decisions_a != decisions_b).float().mean()) if decisions_a.numel() else 0.0


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


def bits_per_token(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy of the labels in bits (bits per character for a byte-level model);
    perplexity is 2 ** this."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    nats = F.cross_entropy(_decisions(logits).double(), labels.reshape(-1), reduction="mean")
    return float(nats) / math.log(2)
