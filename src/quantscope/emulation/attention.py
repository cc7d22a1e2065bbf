"""Attention as the emulator computes it: two named products around a softmax.

`scaled_dot_product_attention` and `nn.MultiheadAttention` (through
`F.multi_head_attention_forward`, so its fused fast path never runs) are both computed as

    scores = (q(Q) . q(K)^T) * scale + mask          op `scores` (data: Q, rhs: K)
    P      = softmax(scores)  [dropout]               op `softmax` (element-wise)
    out    = q(P) . q(V)                              op `values` (data: P, rhs: V)

with each product's accumulator (when set) rounding every product and partial sum, and its output
format (when set) applied after the scale and mask. Masks are exact additive -inf/0 (or float)
terms, never quantized. Multi-head attention adds its input projections (`in_proj`, or `in_proj.q`,
`in_proj.kv`, `in_proj.k`, `in_proj.v` where query, key and value differ; `q_proj`, `k_proj`,
`v_proj` with separate weights) and its output projection (`out_proj`), as linear ops.
"""

from __future__ import annotations

import math
from typing import Any, overload

import torch
import torch.nn.functional as F

from .calls import Backend, linear_product, two_operand

__all__ = ["attend", "scaled_dot_product_attention", "multi_head_attention_forward"]


@overload
def _additive(mask: torch.Tensor, masked_when: bool, dtype: torch.dtype) -> torch.Tensor: ...
@overload
def _additive(mask: None, masked_when: bool, dtype: torch.dtype) -> None: ...
@overload
def _additive(mask: torch.Tensor | None, masked_when: bool, dtype: torch.dtype) -> torch.Tensor | None: ...
def _additive(mask: torch.Tensor | None, masked_when: bool, dtype: torch.dtype) -> torch.Tensor | None:
    """A float mask to add to the scores; bool masks give -inf where a position is masked."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    blocked = mask if masked_when else ~mask
    return torch.zeros(blocked.shape, dtype=dtype, device=mask.device).masked_fill_(blocked, -math.inf)


def attend(backend: Backend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           dropout_p: float, scale: float, keep_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(output, attention weights P) of softmax(q k^T * scale + mask) v, as named ops; P is the
    values op's to round in place unless the caller `keep_weights` (it returns them)."""

    def epilogue(s: torch.Tensor) -> torch.Tensor:
        # s is the product's own fresh result (no autograd function saves it), so scaling and
        # masking in place give the same values without allocating a (B, L, S) tensor twice
        s = s.mul_(scale)
        if mask is None:
            return s
        in_place = mask.dtype == s.dtype and torch.broadcast_shapes(s.shape, mask.shape) == s.shape
        return s.add_(mask) if in_place else s + mask

    scores = backend.product(two_operand("scores", q, k.transpose(-2, -1), epilogue=epilogue, label="scores"))

    def softmax() -> torch.Tensor:
        if torch.is_grad_enabled() and scores.requires_grad:
            return torch.softmax(scores, -1)
        return torch.softmax(scores, -1, out=scores)  # the scores are ours and dead after: no (B, L, S) allocation

    p = backend.elementwise("softmax", softmax, label="softmax", inputs=(scores,))
    if dropout_p > 0.0:
        p = F.dropout(p, dropout_p, training=True)
    return backend.product(two_operand("values", p, v, label="values", spent=(not keep_weights, False))), p


def scaled_dot_product_attention(backend: Backend, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """`F.scaled_dot_product_attention`, decomposed (see the module docstring)."""

    def original():
        return F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)

    def decomposed():
        k, v = key, value
        if enable_gqa and query.dim() >= 3 and k.shape[-3] != query.shape[-3]:
            rep = query.shape[-3] // k.shape[-3]
            k, v = k.repeat_interleave(rep, -3), v.repeat_interleave(rep, -3)
        length, source = query.shape[-2], k.shape[-2]
        mask = _additive(attn_mask, masked_when=False, dtype=query.dtype)
        if is_causal:
            causal = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
            mask = _additive(causal, masked_when=False, dtype=query.dtype) if mask is None else mask + _additive(causal, False, query.dtype)
        factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
        return attend(backend, query, k, v, mask, dropout_p, factor)[0]

    return backend.composite(original, decomposed)


def _projections(backend: Backend, query, key, value, e: int, in_proj_weight, in_proj_bias, separate: bool,
                 q_proj_weight, k_proj_weight, v_proj_weight) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v from the input projections, named as in the module docstring."""

    def lin(x, w, b, label):
        return backend.product(linear_product(x, w, b, label))

    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias.chunk(3)
    if separate:
        return lin(query, q_proj_weight, bq, "q_proj"), lin(key, k_proj_weight, bk, "k_proj"), lin(value, v_proj_weight, bv, "v_proj")
    if query is key and key is value:
        q, k, v = lin(query, in_proj_weight, in_proj_bias, "in_proj").chunk(3, -1)
        return q, k, v
    wq, wk, wv = in_proj_weight.chunk(3)
    if key is value:
        bkv = None if in_proj_bias is None else in_proj_bias[e:]
        k, v = lin(key, in_proj_weight[e:], bkv, "in_proj.kv").chunk(2, -1)
        return lin(query, wq, bq, "in_proj.q"), k, v
    return lin(query, wq, bq, "in_proj.q"), lin(key, wk, bk, "in_proj.k"), lin(value, wv, bv, "in_proj.v")


def _heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(L, B, E) -> (B, heads, L, E / heads) as a view: rounding the operand copies it once, into
    a reused buffer, where a reshape to (B * heads, L, hd) would allocate a copy per call."""
    return t.unflatten(-1, (heads, -1)).permute(1, 2, 0, 3)


def _pad_masks(masks: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Each mask with one more (unmasked) key position."""
    return [None if m is None else F.pad(m, (0, 1)) for m in masks]


def _keys(k, v, bsz, heads, hd, bias_k, bias_v, static_k, static_v, add_zero_attn, masks):
    """Keys and values per head (B, heads, S, hd), with MHA's optional extra key/value rows, and the
    masks padded to match."""
    if bias_k is not None and bias_v is not None:
        k, v = torch.cat([k, bias_k.repeat(1, bsz, 1)]), torch.cat([v, bias_v.repeat(1, bsz, 1)])
        masks = _pad_masks(masks)
    k = static_k.reshape(bsz, heads, -1, hd) if static_k is not None else _heads(k, heads)
    v = static_v.reshape(bsz, heads, -1, hd) if static_v is not None else _heads(v, heads)
    if add_zero_attn:
        k, v = torch.cat([k, k.new_zeros(bsz, heads, 1, hd)], dim=2), torch.cat([v, v.new_zeros(bsz, heads, 1, hd)], dim=2)
        masks = _pad_masks(masks)
    return k, v, masks


def _merged_mask(mask, pad_mask, bsz: int, heads: int, source: int, dtype) -> torch.Tensor | None:
    """MHA's attention mask and key-padding mask as one additive mask broadcasting to (bsz, heads, L, S)."""
    if mask is not None and mask.dim() == 3:
        mask = mask.view(bsz, heads, -1, source)
    if pad_mask is not None:
        pm = _additive(pad_mask, masked_when=True, dtype=dtype).view(bsz, 1, 1, source)
        mask = pm if mask is None else mask + pm
    return mask


def _mha(backend: Backend, query, key, value, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
         out_proj_weight, out_proj_bias, training, key_padding_mask, need_weights, attn_mask, use_separate_proj_weight, q_proj_weight,
         k_proj_weight, v_proj_weight, static_k, static_v, average_attn_weights) -> tuple[torch.Tensor, torch.Tensor | None]:
    unbatched = query.dim() == 2
    q, k, v = _projections(backend, query, key, value, query.shape[-1], in_proj_weight, in_proj_bias, use_separate_proj_weight,
                           q_proj_weight, k_proj_weight, v_proj_weight)
    if unbatched:
        q, k, v = q[:, None], k[:, None], v[:, None]
    length, bsz, e = q.shape
    hd = e // num_heads
    pad = key_padding_mask if key_padding_mask is None or not unbatched else key_padding_mask[None]
    k, v, (mask, pad) = _keys(k, v, bsz, num_heads, hd, bias_k, bias_v, static_k, static_v, add_zero_attn,
                              [_additive(attn_mask, masked_when=True, dtype=q.dtype), pad])
    mask = _merged_mask(mask, pad, bsz, num_heads, k.shape[2], q.dtype)
    out, p = attend(backend, _heads(q, num_heads), k, v, mask, dropout_p if training else 0.0, 1.0 / math.sqrt(hd), need_weights)
    out = out.permute(2, 0, 1, 3).reshape(length * bsz, e)  # (B, heads, L, hd) -> (L * B, E)
    out = backend.product(linear_product(out, out_proj_weight, out_proj_bias)).view(length, bsz, e)
    weights = None
    if need_weights:
        weights = p.mean(dim=1) if average_attn_weights else p
        weights = weights.squeeze(0) if unbatched else weights
    return (out.squeeze(1) if unbatched else out), weights


def multi_head_attention_forward(backend: Backend, query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                                 in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None, v_proj_weight=None,
                                 static_k=None, static_v=None, average_attn_weights=True, is_causal=False) -> Any:
    """`F.multi_head_attention_forward`, decomposed (see the module docstring); `is_causal` is
    only a hint in PyTorch (the mask is given), so the mask is what counts."""
    args = (query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
            dropout_p, out_proj_weight, out_proj_bias)
    options = dict(training=training, key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
                   use_separate_proj_weight=use_separate_proj_weight, q_proj_weight=q_proj_weight, k_proj_weight=k_proj_weight,
                   v_proj_weight=v_proj_weight, static_k=static_k, static_v=static_v, average_attn_weights=average_attn_weights)
    return backend.composite(
        lambda: F.multi_head_attention_forward(*args, **options, is_causal=is_causal),
        lambda: _mha(backend, query, key, value, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p,
                     out_proj_weight, out_proj_bias, **options))
