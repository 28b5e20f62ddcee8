"""RWKV-6 ("Finch", Peng et al. 2024): WKV with a matrix state per head and a decay computed from the input.

RWKV-4's WKV keeps two numbers per channel and forgets at a fixed rate w. RWKV-5 ("Eagle") gives each head
a d_k × d_v state, read by the receptance r as a query; RWKV-6 then makes the decay a function of the token.
Per head, with row vectors r_t, k_t ∈ R^{d_k}, v_t ∈ R^{d_v}, a decay w_t ∈ (0, 1)^{d_k} and a bonus u ∈ R^{d_k}
(the paper's WKV of Finch's time mixing):

    wkv_t = diag(u) k_tᵀ v_t + Σ_{i<t} diag(Π_{j=i+1}^{t−1} w_j) k_iᵀ v_i,        o_t = r_t · wkv_t

and as an RNN, the form ``rwkv6_reference`` runs:

    o_t = r_t (S_{t−1} + diag(u) k_tᵀ v_t),        S_t = diag(w_t) S_{t−1} + k_tᵀ v_t .

The decay (``finch_log_decay``) is w_t = exp(−exp(d_t)) with d_t = ω + tanh(x_t A) B, a low-rank function
of the token's input x_t: log w_t = −exp(d_t) < 0 for every input, so w_t stays in (0, 1). A token can
drive d_t up and w_t to ~0, which empties the state: the model forgets on cue, which a fixed decay cannot.

**Gated linear attention.** ``postlib.recurrent.decayed_linear_recurrence`` (part 6) computes
q_s · S_s with S_s = diag(a_s) S_{s−1} + k_sᵀ v_s, the gated-linear-attention recurrence (Yang et al. 2024).
With a = w and the queries one token ahead (q_s = r_{s+1}) its output at s is r_{s+1} · S_s, RWKV-6's
read of the past at s + 1. Add the bonus (r_t ⊙ u ⊙ k_t) · v_t and that is ``rwkv6`` (backend
``"chunked"``): RWKV-6 *is* gated linear attention that reads the state before it adds the token.

**Mamba-2's SSD.** When the decay is one number per token and head, w_t = e^{Δ_t A_h}, the same recurrence
is SSD (``postlib.ssm.ssd_chunked``, part 2) with C_t = r_{t+1}, B_s = k_s and Δ_s u_s = v_s. The two
differ in what sets the decay (SSD: Δ_t, one scalar; RWKV-6: a vector over the key channels), not in the
recurrence. Both equalities are checked in tests/recurrent/test_rwkv6.py and in the RWKV chapter.
"""
from __future__ import annotations

import torch

from .._checks import CAUSAL_NONFINITE, check_choice, check_finite, check_positive_int, check_qkv, check_tensor
from .recurrence import DEFAULT_CHUNK, decayed_linear_recurrence

BACKENDS = ("auto", "recurrent", "chunked")
SHAPES = "(batch, heads, length, d_k)"


def finch_log_decay(x, omega, A, B):
    """log w_t = −exp(ω + tanh(x_t A) B): RWKV-6's data-dependent decay, one value per token and key channel.

    x (batch, length, d_in), the token's input; omega (heads, d_k), the decay's base (d_t when the
    low-rank term is 0); A (d_in, rank) and B (rank, heads · d_k), the low-rank map. Returns
    (batch, heads, length, d_k), every entry < 0, finite for every finite input (tanh is bounded).
    """
    check_tensor(x, "x", 3, "(batch, length, d_in)")
    check_tensor(omega, "omega", 2, "(heads, d_k)")
    check_tensor(A, "A", 2, f"(d_in={x.shape[-1]}, rank)")
    H, Dk = omega.shape
    check_tensor(B, "B", 2, f"(rank={A.shape[-1]}, heads·d_k={H * Dk})")
    if A.shape[0] != x.shape[-1]:
        raise ValueError(f"A must have shape (d_in={x.shape[-1]}, rank) to match x's last dimension, "
                         f"got {tuple(A.shape)}")
    if B.shape != (A.shape[1], H * Dk):
        raise ValueError(f"B must have shape (rank={A.shape[1]}, heads·d_k={H * Dk}), got {tuple(B.shape)}")
    for name, t in (("x", x), ("omega", omega), ("A", A), ("B", B)):
        check_finite(t, name, "the decay would be NaN")
    d = omega.reshape(-1) + torch.tanh(x @ A) @ B                     # (batch, length, heads·d_k)
    b, L = x.shape[:2]
    return -torch.exp(d).view(b, L, H, Dk).transpose(1, 2)


def _check_inputs(r, k, v, log_w, u, state):
    check_qkv(r, k, v, SHAPES)
    b, H, L, Dk = r.shape
    check_tensor(log_w, "log_w", 4, SHAPES)
    if log_w.shape != r.shape:
        raise ValueError(f"log_w must have the shape of r {SHAPES} = {tuple(r.shape)}, one log decay per token and "
                         f"key channel, got {tuple(log_w.shape)}")
    check_tensor(u, "u", 2, f"(heads={H}, d_k={Dk})")
    if u.shape != (H, Dk):
        raise ValueError(f"u must have shape (heads, d_k) = {(H, Dk)}, got {tuple(u.shape)}")
    for name, t in (("log_w", log_w), ("u", u)):
        if t.dtype != r.dtype or t.device != r.device:
            raise TypeError(f"{name} is {t.dtype} on {t.device} but r is {r.dtype} on {r.device}; they must match")
    if state is not None:
        check_tensor(state, "state", 4, f"(batch, heads, d_k, d_v) = {(b, H, Dk, v.shape[-1])}")
        if state.shape != (b, H, Dk, v.shape[-1]):
            raise ValueError(f"state must have shape (batch, heads, d_k, d_v) = {(b, H, Dk, v.shape[-1])}, "
                             f"got {tuple(state.shape)}")
    for name, t in (("r", r), ("k", k), ("v", v), ("log_w", log_w), ("u", u)):
        check_finite(t, name, CAUSAL_NONFINITE)
    if (log_w > 0).any():
        raise ValueError("log_w must be <= 0 (a decay w_t = exp(log_w) in (0, 1]; finch_log_decay gives one), "
                         "got positive values")


def rwkv6_reference(r, k, v, log_w, u, state=None):
    """The RNN loop, one token at a time, exactly as above: the definition the chunked form is held to.

    r, k, log_w (batch, heads, length, d_k); v (batch, heads, length, d_v); u (heads, d_k);
    state (batch, heads, d_k, d_v) or None (zeros). Returns (o (batch, heads, length, d_v), final state).
    """
    _check_inputs(r, k, v, log_w, u, state)
    S = r.new_zeros(*r.shape[:2], r.shape[-1], v.shape[-1]) if state is None else state
    outs = []
    for t in range(r.shape[2]):
        kv = k[:, :, t, :, None] * v[:, :, t, None, :]                # k_tᵀ v_t: (batch, heads, d_k, d_v)
        outs.append(torch.einsum("bhd,bhdv->bhv", r[:, :, t], S + u[None, :, :, None] * kv))
        S = torch.exp(log_w[:, :, t, :, None]) * S + kv
    return torch.stack(outs, dim=2), S


def rwkv6(r, k, v, log_w, u, *, backend: str = "auto", chunk_size: int = DEFAULT_CHUNK, state=None,
          return_state: bool = False):
    """RWKV-6's WKV read by the receptance: o_t = r_t (S_{t−1} + diag(u) k_tᵀ v_t) for every token.

    Args:
        r, k: (batch, heads, length, d_k) receptance and key; v: (batch, heads, length, d_v).
        log_w: (batch, heads, length, d_k), log of the decay applied after token t (≤ 0; ``finch_log_decay``).
        u: (heads, d_k), the bonus of the current token.
        backend: ``"recurrent"`` (``rwkv6_reference``), ``"chunked"`` (gated linear attention with the
            queries one token ahead, ``decayed_linear_recurrence``; O(L·chunk) work), ``"auto"`` (chunked).
        state: (batch, heads, d_k, d_v), the state after the tokens before these (streaming), or None.
        return_state: also return the state after the last token.
    Equals the loop in fp64 (tests/recurrent/test_rwkv6.py).
    """
    check_choice(backend, "backend", BACKENDS)
    check_positive_int(chunk_size, "chunk_size")
    if backend == "recurrent":
        out, last = rwkv6_reference(r, k, v, log_w, u, state)
        return (out, last) if return_state else out
    _check_inputs(r, k, v, log_w, u, state)
    ahead = torch.cat([r[:, :, 1:], torch.zeros_like(r[:, :, :1])], dim=2)     # q_s = r_{s+1}
    read, last = decayed_linear_recurrence(ahead, k, v, log_w, backend="chunked", chunk_size=chunk_size,
                                           initial_state=state, return_state=True)
    # read[s] = r_{s+1} · S_s, the past as output s + 1 sees it; output 0 sees the state passed in.
    first = (torch.einsum("bhd,bhdv->bhv", r[:, :, 0], state) if state is not None
             else torch.zeros_like(read[:, :, 0]))
    past = torch.cat([first[:, :, None], read[:, :, :-1]], dim=2)
    bonus = (r * u[None, :, None] * k).sum(-1, keepdim=True) * v          # (r_t ⊙ u ⊙ k_t) · v_t
    out = past + bonus
    return (out, last) if return_state else out


def rwkv6_past_weights(log_w) -> torch.Tensor:
    """What the state keeps of each past token: [..., t, i] = Π_{j=i+1}^{t−1} w_j for i < t, else 0.

    log_w (..., length), one key channel's log decays. Row t is how strongly output t's read of the
    state still holds k_iᵀ v_i (before the receptance weighs it): 1 for the token just before, falling
    with every decay in between. For the figures; O(L²).
    """
    check_tensor(log_w, "log_w", None, "(..., length)")
    L = log_w.shape[-1]
    c = torch.cumsum(log_w, -1)                                       # c_t = Σ_{j≤t} log w_j
    before = torch.cat([torch.zeros_like(c[..., :1]), c[..., :-1]], -1)   # c_{t−1}
    t = torch.arange(L, device=log_w.device)
    gap = before[..., :, None] - c[..., None, :]                      # Σ_{j=i+1}^{t−1} log w_j
    return torch.exp(gap.masked_fill(t[None, :] >= t[:, None], float("-inf")))


def reset_demo_log_decay(length: int, resets=(), *, base_decay: float = 0.05, strength: float = 5.2) -> torch.Tensor:
    """One key channel's log decays from ``finch_log_decay`` for a toy input: the tokens at ``resets`` carry a
    "reset" feature (x_t = 1), the others none (x_t = 0). With ω = log(base_decay), A = 3 and B = ``strength``
    (set by hand here; a model learns them), w_t = e^{−base_decay} away from the resets and
    e^{−base_decay·e^{tanh(3)·strength}} at them (strength 5.2: ~2e-4). Returns (length,) float64.
    The forgetting demo of the RWKV chapter and of the dashboard's Mixing page."""
    check_positive_int(length, "length")
    if not (0 < base_decay < float("inf")):
        raise ValueError(f"base_decay must be a finite number > 0 (w = e^(-base_decay) away from a reset), "
                         f"got {base_decay}")
    if not (0 <= strength < float("inf")):
        raise ValueError(f"strength must be a finite number >= 0 (how far a reset token pushes d_t up), got {strength}")
    resets = [int(t) for t in resets]
    if any(not 0 <= t < length for t in resets):
        raise ValueError(f"resets must be token positions in [0, length={length}), got {resets}")
    f64 = dict(dtype=torch.float64)
    x = torch.zeros(1, length, 1, **f64)
    x[0, resets, 0] = 1.0
    omega = torch.full((1, 1), float(torch.log(torch.tensor(base_decay, **f64))), **f64)
    A, B = torch.full((1, 1), 3.0, **f64), torch.full((1, 1), float(strength), **f64)
    return finch_log_decay(x, omega, A, B)[0, 0, :, 0]
