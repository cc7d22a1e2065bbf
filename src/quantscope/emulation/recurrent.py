"""Recurrent layers as the emulator computes them: input and recurrent products at every step.

`nn.LSTM`, `nn.GRU`, `nn.RNN` (through `torch.lstm`, `torch.gru`, `torch.rnn_tanh`,
`torch.rnn_relu`) and their cells are unrolled. For layer l and direction d (`_reverse` for the
backward direction of a bidirectional layer) the ops are

    l{l}.ih   x_t W_ih^T + b_ih for every step t (one product over the whole sequence)
    l{l}.hh   h_{t-1} W_hh^T + b_hh, once per step
    l{l}.hr   h_t W_hr^T (LSTM with proj_size)

and the element-wise ops `l{l}.gates` (the pre-activation sum ih + hh; for GRU its reset and
update part), `l{l}.c` (LSTM cell state) and `l{l}.h` (hidden state), computed as PyTorch
documents: LSTM  i, f, g, o = gates; c' = sigmoid(f) c + sigmoid(i) tanh(g); h' = sigmoid(o) tanh(c');
GRU  r, z = sigmoid(gates); n = tanh(ih_n + r hh_n); h' = (1 - z) n + z h; RNN h' = tanh(gates)
(or relu). Cells use the same names without the layer prefix (`ih`, `hh`, `gates`, `c`, `h`).
Packed sequences are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .calls import Backend, linear_product

__all__ = ["ADAPTERS"]

_GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def _step(backend: Backend, mode: str, prefix: str, xi: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
          w_hh: torch.Tensor, b_hh: torch.Tensor | None, w_hr: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One time step: (h', c') from the step's input product xi and the state (h, c)."""
    name = (lambda part: f"{prefix}.{part}") if prefix else (lambda part: part)
    gh = backend.product(linear_product(h, w_hh, b_hh, name("hh")))
    if mode == "gru":
        hidden = h.shape[-1]
        rz = backend.elementwise("add", lambda: xi[..., : 2 * hidden] + gh[..., : 2 * hidden], label=name("gates"))
        r, z = torch.sigmoid(rz).chunk(2, -1)
        n = torch.tanh(xi[..., 2 * hidden :] + r * gh[..., 2 * hidden :])
        return backend.elementwise("add", lambda: (1 - z) * n + z * h, label=name("h")), None
    gates = backend.elementwise("add", lambda: xi + gh, label=name("gates"))
    if mode != "lstm":
        act = torch.tanh if mode == "rnn_tanh" else torch.relu
        return backend.elementwise(mode.removeprefix("rnn_"), lambda: act(gates), label=name("h")), None
    i, f, g, o = gates.chunk(4, -1)
    assert c is not None, "an LSTM step carries a cell state"
    cell = c
    c = backend.elementwise("add", lambda: torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g), label=name("c"))
    h = backend.elementwise("mul", lambda: torch.sigmoid(o) * torch.tanh(c), label=name("h"))
    if w_hr is not None:
        h = backend.product(linear_product(h, w_hr, None, name("hr")))
    return h, c


def _layer(backend: Backend, mode: str, prefix: str, seq: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
           weights: Sequence[torch.Tensor], has_biases: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One layer and direction over a (T, N, I) sequence: (outputs (T, N, H), h_T, c_T)."""
    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if has_biases else (None, None)
    w_hr = weights[-1] if len(weights) in (3, 5) else None
    xi = backend.product(linear_product(seq, w_ih, b_ih, f"{prefix}.ih"))
    outputs = []
    for t in range(seq.shape[0]):
        h, c = _step(backend, mode, prefix, xi[t], h, c, w_hh, b_hh, w_hr)
        outputs.append(h)
    return torch.stack(outputs), h, c


def _network(backend: Backend, mode: str, input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
             batch_first) -> tuple[torch.Tensor, ...]:
    directions = 2 if bidirectional else 1
    per = len(params) // (num_layers * directions)
    x = input.transpose(0, 1) if batch_first else input
    h0, c0 = (hx[0], hx[1]) if mode == "lstm" else (hx, None)
    hs: list[torch.Tensor] = []
    cs: list[Any] = []
    for layer in range(num_layers):
        outs = []
        for d in range(directions):
            k = layer * directions + d
            seq = x if d == 0 else x.flip(0)
            out, h, c = _layer(backend, mode, f"l{layer}{'_reverse' if d else ''}", seq, h0[k], None if c0 is None else c0[k],
                               params[k * per : (k + 1) * per], has_biases)
            outs.append(out if d == 0 else out.flip(0))
            hs.append(h)
            cs.append(c)
        x = torch.cat(outs, -1) if directions == 2 else outs[0]
        if dropout and train and layer < num_layers - 1:
            x = F.dropout(x, dropout, training=True)
    output = x.transpose(0, 1) if batch_first else x
    if mode == "lstm":
        return output, torch.stack(hs), torch.stack(cs)
    return output, torch.stack(hs)


def _network_adapter(mode: str) -> Callable[..., Any]:
    func = getattr(torch, mode)

    def adapter(backend: Backend, *args: Any) -> Any:
        if len(args) > 2 and isinstance(args[2], (list, tuple)) and isinstance(args[1], torch.Tensor) and args[1].dim() == 1:
            raise ValueError(f"torch.{mode} on a PackedSequence is not supported by the emulator; pass a padded tensor "
                             "(torch.nn.utils.rnn.pad_packed_sequence) instead")
        return backend.composite(lambda: func(*args), lambda: _network(backend, mode, *args))

    return adapter


def _cell_adapter(mode: str) -> Callable[..., Any]:
    func = getattr(torch, f"{mode}_cell")

    def decomposed(backend, input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
        unbatched = input.dim() == 1
        x = input[None] if unbatched else input
        h, c = (hx[0], hx[1]) if mode == "lstm" else (hx, None)
        h, c = (h[None], None if c is None else c[None]) if unbatched else (h, c)
        xi = backend.product(linear_product(x, w_ih, b_ih, "ih"))
        h, c = _step(backend, mode, "", xi, h, c, w_hh, b_hh, None)
        if unbatched:
            h, c = h[0], None if c is None else c[0]
        return (h, c) if mode == "lstm" else h

    def adapter(backend: Backend, *args: Any, **kwargs: Any) -> Any:
        return backend.composite(lambda: func(*args, **kwargs), lambda: decomposed(backend, *args, **kwargs))

    return adapter


ADAPTERS: dict[Callable[..., Any], Callable[..., Any]] = {
    **{getattr(torch, mode): _network_adapter(mode) for mode in _GATES},
    **{getattr(torch, f"{mode}_cell"): _cell_adapter(mode) for mode in _GATES},
}
