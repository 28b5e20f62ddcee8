"""One decayed linear recurrence behind linear attention, retention, SSD and gated linear RNNs.

Every model in this family keeps a matrix state per head, decays it, and adds one outer product per token:

    S_t = a_t ⊙ S_{t-1} + k_t v_tᵀ,        o_t = S_tᵀ q_t          (S_t: d_k × d_v)

Unrolled, it is attention without a softmax, weighted by the decay accumulated between the two tokens:

    o_t = Σ_{s≤t} (q_t ⊙ Π_{r=s+1..t} a_r) · k_s  v_s .

The decay a_t is the only thing that changes from one model to the next:

==========================  ============================  ===============================================
model                       decay a_t                     ``log_decay`` given here
==========================  ============================  ===============================================
linear attention            1                             ``None``
RetNet's retention          γ_h, fixed per head           shape (heads,): log γ_h
Mamba-2's SSD               exp(Δ_t A_h), per token       shape (batch, heads, length): Δ_t A_h
GLA / RWKV-6 style          w_t ∈ (0, 1)^{d_k}            shape (batch, heads, length, d_k): log w_t
==========================  ============================  ===============================================

Three forms, each equal to the loop over the unrolled sum (:func:`recurrence_reference`), proved in
``tests/recurrent/test_recurrence.py``:

* :func:`recurrence_recurrent` — the RNN: one token at a time, O(d_k·d_v) memory, L sequential steps;
* :func:`recurrence_chunked` — parallel inside chunks of C tokens (a masked, decayed C × C score matrix),
  recurrent across chunks (the state after each chunk). O(L·C) time, O(C² + d_k·d_v) working memory, never L × L;
* ``backend="triton"`` — the chunked form as a GPU kernel (``postlib.kernels.retention``; scalar decays).

Decays are handled in log space: inside a chunk, with g_t = Σ_{r≤t} log a_r (cumulative from the chunk start),
the decay from s to t is exp(g_t − g_s) ≤ 1 for s ≤ t, so nothing overflows however strong the decay.
"""
from __future__ import annotations

import torch

from .._checks import (CAUSAL_NONFINITE, check_choice, check_finite, check_positive_int, check_qkv, check_same,
                       check_tensor)

BACKENDS = ("auto", "reference", "recurrent", "chunked", "triton")
DEFAULT_CHUNK = 64


def _decay_kind(log_decay, q) -> str:
    """'none', 'head' (H,), 'token' (B, H, L) or 'channel' (B, H, L, d_k) — validated against q."""
    if log_decay is None:
        return "none"
    B, H, L, Dk = q.shape
    shapes = {"head": (H,), "token": (B, H, L), "channel": (B, H, L, Dk)}
    for kind, shape in shapes.items():
        if tuple(log_decay.shape) == shape:
            return kind
    raise ValueError(f"log_decay must have shape (heads,) = {(H,)}, (batch, heads, length) = {(B, H, L)} or "
                     f"(batch, heads, length, d_k) = {(B, H, L, Dk)}, got {tuple(log_decay.shape)}")


def _per_token(log_decay, q) -> torch.Tensor | None:
    """The decay as (B or 1, H, L[, d_k]) log values, whatever form it came in."""
    kind = _decay_kind(log_decay, q)
    if kind == "head":
        return log_decay[None, :, None].expand(1, q.shape[1], q.shape[2])
    return log_decay


def _exp(log_values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """exp in the decay's own precision (at least fp32: 1 − 2^-9 is 1.0 in bf16), then cast to the data's dtype."""
    return torch.exp(log_values).to(like.dtype)


def recurrence_reference(q, k, v, log_decay=None, initial_state=None):
    """The loop over the unrolled sum, one output at a time — the definition the fast forms must equal.

    o_t = Σ_{s≤t} (q_t ⊙ exp(c_t − c_s)) · k_s v_s  (+ the decayed initial state), with c_t = Σ_{r≤t} log a_r.
    q, k: (B, H, L, d_k); v: (B, H, L, d_v). Returns (o, final state (B, H, d_k, d_v)).
    """
    B, H, L, Dk = q.shape
    g = _per_token(log_decay, q)
    if g is None:
        g = q.new_zeros(1, H, L)
    c = g.cumsum(2)                                              # c_t = log Π_{r≤t} a_r
    if c.dim() == 3:
        c = c[..., None]                                         # a scalar decay acts on every key channel
    c = c.expand(B, H, L, Dk)
    out = torch.empty(B, H, L, v.shape[-1], dtype=v.dtype, device=v.device)
    for t in range(L):
        w = torch.exp(c[:, :, t:t + 1] - c[:, :, :t + 1])        # Π_{r=s+1..t} a_r for every s ≤ t
        scores = ((q[:, :, t:t + 1] * w) * k[:, :, :t + 1]).sum(-1)           # (B, H, t+1)
        out[:, :, t] = torch.einsum("bhs,bhsv->bhv", scores, v[:, :, :t + 1])
        if initial_state is not None:
            out[:, :, t] += torch.einsum("bhd,bhdv->bhv", q[:, :, t] * torch.exp(c[:, :, t]), initial_state)
    final = torch.einsum("bhsd,bhsv->bhdv", k * torch.exp(c[:, :, -1:] - c), v)
    if initial_state is not None:
        final = final + torch.exp(c[:, :, -1])[..., None] * initial_state
    return out, final


def recurrent_step(q_t, k_t, v_t, state, log_decay_t=None):
    """One token of the RNN: S ← a_t ⊙ S + k_t v_tᵀ, then o_t = Sᵀ q_t.

    q_t, k_t: (B, H, d_k); v_t: (B, H, d_v); state: (B, H, d_k, d_v);
    ``log_decay_t``: None, (H,) or (B, H) for a scalar decay, (B, H, d_k) for one per key channel.
    """
    if log_decay_t is not None:
        a = _exp(log_decay_t, state)
        if a.dim() == 1:
            a = a[None, :, None, None]
        elif a.dim() == 2:
            a = a[..., None, None]
        else:
            a = a[..., None]
        state = a * state
    state = state + k_t[..., :, None] * v_t[..., None, :]
    return torch.einsum("bhd,bhdv->bhv", q_t, state), state


def recurrence_recurrent(q, k, v, log_decay=None, initial_state=None):
    """The RNN view: L sequential steps of :func:`recurrent_step`, constant memory in L.

    Equals :func:`recurrence_reference` (tests/recurrent/test_recurrence.py). Returns (o, final state).
    """
    B, H, L, Dk = q.shape
    g = _per_token(log_decay, q)
    state = q.new_zeros(B, H, Dk, v.shape[-1]) if initial_state is None else initial_state
    outs = []
    for t in range(L):
        o_t, state = recurrent_step(q[:, :, t], k[:, :, t], v[:, :, t], state,
                                    None if g is None else g[:, :, t])
        outs.append(o_t)
    return torch.stack(outs, dim=2), state


def recurrence_chunked(q, k, v, log_decay=None, chunk_size: int = DEFAULT_CHUNK, initial_state=None):
    """Parallel inside each chunk of C tokens, recurrent across chunks. Returns (o, final state).

    For a chunk starting after state S (everything before it), with g_t the log decay accumulated from the
    chunk start to token t (so exp(g_t) ≤ 1):

        o_t = Σ_{s≤t in chunk} (q_t ⊙ e^{g_t − g_s}) · k_s v_s    (intra: a masked C × C score matrix)
            + (q_t ⊙ e^{g_t})ᵀ S                                   (inter: the state, decayed to t)
        S  ← e^{g_C} ⊙ S + Σ_s (k_s ⊙ e^{g_C − g_s}) v_sᵀ          (carry to the next chunk)

    Time O(L·C·d + L·d_k·d_v), working memory O(C² + d_k·d_v) per head (O(C²·d_k) with a decay per
    key channel) — never L × L. Equals :func:`recurrence_reference` for every decay kind and chunk size
    (tests/recurrent/test_recurrence.py).
    """
    C = check_positive_int(chunk_size, "chunk_size")
    B, H, L, Dk = q.shape
    g_all = _per_token(log_decay, q)
    vector = g_all is not None and g_all.dim() == 4
    S = q.new_zeros(B, H, Dk, v.shape[-1]) if initial_state is None else initial_state
    causal = torch.ones(min(C, L), min(C, L), dtype=torch.bool, device=q.device).tril()
    outs = []
    # torch.split, not a slice per chunk: the backward of L/C slices would write L/C full-length zero
    # gradients (O(L²/C) time, the linear form turning quadratic in training); split's is one concatenation.
    pieces = [torch.split(t, C, dim=2) for t in (q, k, v)]
    g_pieces = torch.split(g_all, C, dim=2) if g_all is not None else [None] * len(pieces[0])
    for qc, kc, vc, g_chunk in zip(*pieces, g_pieces):
        n = qc.shape[2]
        mask = causal[:n, :n]
        if g_all is None:                                                    # a = 1: linear attention
            scores = (qc @ kc.transpose(-1, -2)).masked_fill(~mask, 0.0)
            out = scores @ vc + qc @ S
            S = S + kc.transpose(-1, -2) @ vc
        elif not vector:                                                     # a scalar decay per token
            g = g_chunk.cumsum(-1)                                           # (B|1, H, n), ≤ 0, decreasing
            decay = _exp((g[..., :, None] - g[..., None, :]).masked_fill(~mask, float("-inf")), q)
            scores = (qc @ kc.transpose(-1, -2)) * decay
            out = scores @ vc + (qc * _exp(g, q)[..., None]) @ S
            to_end = _exp(g[..., -1:] - g, q)[..., None]                     # decay from s to the chunk end
            S = _exp(g[..., -1], q)[..., None, None] * S + (kc * to_end).transpose(-1, -2) @ vc
        else:                                                                # a decay per token and key channel
            g = g_chunk.cumsum(-2)                                           # (B, H, n, d_k)
            pair = (g[..., :, None, :] - g[..., None, :, :]).masked_fill(~mask[..., None], float("-inf"))
            scores = torch.einsum("bhtd,bhsd,bhtsd->bhts", qc, kc, _exp(pair, q))
            out = scores @ vc + (qc * _exp(g, q)) @ S
            S = _exp(g[..., -1, :], q)[..., None] * S + (kc * _exp(g[..., -1:, :] - g, q)).transpose(-1, -2) @ vc
        outs.append(out)
    return torch.cat(outs, dim=2), S


def decayed_linear_recurrence(q, k, v, log_decay=None, *, backend: str = "auto", chunk_size: int = DEFAULT_CHUNK,
                              initial_state=None, return_state: bool = False):
    """S_t = a_t ⊙ S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t — linear attention, retention, SSD and gated forms in one.

    Args:
        q, k: (batch, heads, length, d_k); v: (batch, heads, length, d_v).
        log_decay: log a_t ≤ 0 — ``None`` (a = 1), (heads,), (batch, heads, length) or
            (batch, heads, length, d_k) (see the module docstring's table).
        backend: ``"reference"`` (the loop over the unrolled sum), ``"recurrent"``, ``"chunked"``,
            ``"triton"`` (scalar decays; CUDA, or CPU under ``TRITON_INTERPRET=1``), or ``"auto"``
            (Triton for CUDA tensors with a scalar decay and no initial state, chunked otherwise).
        initial_state: (batch, heads, d_k, d_v), the state before the first token (streaming).
        return_state: also return the state after the last token.
    Non-finite inputs are refused (unless inside ``postlib.allow_nonfinite()``): the chunked and Triton forms
    multiply masked entries by 0, and 0·NaN would carry a NaN backwards to earlier outputs.
    """
    check_qkv(q, k, v)
    check_choice(backend, "backend", BACKENDS)
    check_positive_int(chunk_size, "chunk_size")
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"q and k must have the same length, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    tensors, names = [q, k, v], ["q", "k", "v"]
    if log_decay is not None:
        check_tensor(log_decay, "log_decay", None, "(heads,), (batch, heads, length) or (batch, heads, length, d_k)")
        if log_decay.device != q.device:
            raise TypeError(f"log_decay is on {log_decay.device} but q is on {q.device}; all inputs must share a device")
        _decay_kind(log_decay, q)
        if (log_decay > 0).any():
            raise ValueError("log_decay must be <= 0 (a decay a_t = exp(log_decay) in (0, 1]), got positive values")
        tensors.append(log_decay)
        names.append("log_decay")
    if initial_state is not None:
        B, H, _, Dk = q.shape
        check_tensor(initial_state, "initial_state", 4, "(batch, heads, d_k, d_v)")
        if tuple(initial_state.shape) != (B, H, Dk, v.shape[-1]):
            raise ValueError(f"initial_state must have shape (batch, heads, d_k, d_v) = {(B, H, Dk, v.shape[-1])}, "
                             f"got {tuple(initial_state.shape)}")
        check_same([q, initial_state], ["q", "initial_state"])
        tensors.append(initial_state)
        names.append("initial_state")
    for t, name in zip(tensors, names):
        check_finite(t, name, CAUSAL_NONFINITE)
    scalar = log_decay is None or log_decay.dim() < 4
    if backend == "auto":
        backend = "triton" if (q.is_cuda and scalar and initial_state is None) else "chunked"
    if backend == "triton":
        if not scalar or initial_state is not None:
            raise ValueError("backend='triton' supports scalar decays (log_decay None, (heads,) or "
                             "(batch, heads, length)) and no initial_state; use backend='chunked'")
        from ..kernels.retention import triton_decayed_recurrence
        out, state = triton_decayed_recurrence(q, k, v, log_decay, chunk_size=min(chunk_size, 64))
        return (out, state) if return_state else out
    form = {"reference": recurrence_reference, "recurrent": recurrence_recurrent}.get(backend)
    if form is not None:
        out, state = form(q, k, v, log_decay, initial_state)
    else:
        out, state = recurrence_chunked(q, k, v, log_decay, chunk_size, initial_state)
    return (out, state) if return_state else out
