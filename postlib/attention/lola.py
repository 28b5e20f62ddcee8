"""A LoLA-style hybrid (McDermott et al. 2025): linear attention plus a small exact cache.

Linear attention forgets *sharply*: every key–value pair is smeared into one
matrix state, so a pair that collides with others is recalled badly. LoLA
keeps three memories per head:

* a sliding **window** of the last ``window`` tokens, attended exactly;
* a **sparse cache** of ``sparse`` older tokens, those the linear state would
  recall worst — the largest *self-recall error* ‖v_j − φ(k_j)ᵀS/φ(k_j)ᵀz‖;
* the **linear state** (S, z) that absorbs everything evicted from both.

The output combines the exact and the linear parts in one normalisation:

    y_t = [Σ_{j∈cache} e^{q·k_j/√d} v_j + φ(q)ᵀS] / [Σ_{j∈cache} e^{q·k_j/√d} + φ(q)ᵀz].

The cache has a fixed capacity M = window + sparse, so memory per head is
O(M·d + d²) whatever the context. At each token the new (k, v) joins the
cache; if M+1 entries are then held, the one with the smallest self-recall
error among those outside the window is folded into (S, z).

This is our simplified reading (φ = elu+1 rather than LoLA's learned feature
map; scores clamped at ``SCORE_CLAMP`` so the un-stabilised exponential cannot
overflow in fp32). The recurrence *is* the definition: ``lola_attention`` runs
it over the sequence. With M ≥ L nothing is evicted and it equals softmax
attention exactly (tests/attention/test_lola.py). Being a loop over tokens, it
stays causal even under non-finite input (tests/test_input_hygiene.py).
"""
from __future__ import annotations

import math

import torch

from .._checks import check_number, check_positive_int, check_qkv
from .linear import EPS, apply_feature_map

SCORE_CLAMP = 30.0


def init_cache(batch: int, heads: int, capacity: int, head_dim: int, device=None, dtype=None) -> dict:
    """Empty cache (all slots invalid) and zero linear state."""
    z = dict(device=device, dtype=dtype)
    return {"k": torch.zeros(batch, heads, capacity, head_dim, **z),
            "v": torch.zeros(batch, heads, capacity, head_dim, **z),
            "pos": torch.full((batch, heads, capacity), -1, dtype=torch.long, device=device),
            "S": torch.zeros(batch, heads, head_dim, head_dim, **z),
            "zsum": torch.zeros(batch, heads, head_dim, **z),
            "t": 0}


def self_recall_error(k, v, S, zsum, eps: float = EPS):
    """‖v − φ(k)ᵀS / φ(k)ᵀz‖ for cache entries k, v (B, H, M, D) against the state (S, z)."""
    pk = apply_feature_map(k)
    den = (pk * zsum[:, :, None]).sum(-1, keepdim=True) + eps
    # An empty state recalls nothing (0), not 0/0: the error is then |v|.
    recalled = torch.where(den > 0, (pk @ S) / den.clamp_min(1e-300), torch.zeros_like(v))
    return (v - recalled).norm(dim=-1)


def lola_step(q_t, k_t, v_t, cache: dict, window: int, eps: float = EPS):
    """One token: q_t, k_t, v_t of shape (B, H, D). Returns (y_t (B, H, D), new cache)."""
    t = cache["t"]
    B, H, M, D = cache["k"].shape
    k = torch.cat([cache["k"], k_t[:, :, None]], dim=2)                  # M + 1 candidates
    v = torch.cat([cache["v"], v_t[:, :, None]], dim=2)
    pos = torch.cat([cache["pos"], torch.full((B, H, 1), t, dtype=torch.long, device=k.device)], dim=2)
    S, zsum = cache["S"], cache["zsum"]
    # Who leaves: an empty slot if any (−inf), never a window token (+inf), else the best-recalled one.
    err = self_recall_error(k, v, S, zsum, eps).detach()
    err = torch.where(pos > t - window, torch.full_like(err, float("inf")), err)
    err = torch.where(pos < 0, torch.full_like(err, float("-inf")), err)
    drop = err.argmin(dim=-1)                                              # (B, H)
    one_hot = torch.nn.functional.one_hot(drop, M + 1).to(k.dtype)        # (B, H, M+1)
    gone_valid = (pos.gather(2, drop[..., None])[..., 0] >= 0).to(k.dtype)
    k_out = (one_hot[..., None] * k).sum(2)
    v_out = (one_hot[..., None] * v).sum(2)
    pk_out = apply_feature_map(k_out) * gone_valid[..., None]             # an empty slot adds nothing
    S = S + pk_out[..., :, None] * v_out[..., None, :]
    zsum = zsum + pk_out
    keep = one_hot == 0
    k, v, pos = (x[keep].view(B, H, M, *x.shape[3:]) for x in (k, v, pos))
    # Read: exact exponential kernel over valid cache entries + the linear state.
    scores = (k @ q_t[..., None])[..., 0] / math.sqrt(D)
    w = torch.exp(scores.clamp(max=SCORE_CLAMP)) * (pos >= 0).to(k.dtype)
    pq = apply_feature_map(q_t)
    num = (w[..., None] * v).sum(2) + (pq[..., :, None] * S).sum(-2)
    den = w.sum(-1) + (pq * zsum).sum(-1)
    y = num / (den[..., None] + eps)
    return y, {"k": k, "v": v, "pos": pos, "S": S, "zsum": zsum, "t": t + 1}


def lola_attention(q, k, v, window: int = 4, sparse: int = 4, eps: float = EPS) -> torch.Tensor:
    """Causal LoLA-style attention over (batch, heads, length, head_dim) tensors (head_dim_v = head_dim)."""
    check_qkv(q, k, v)
    check_positive_int(window, "window")
    check_positive_int(sparse, "sparse", minimum=0)
    eps = check_number(eps, "eps", nonnegative=True)
    if v.shape[-1] != q.shape[-1] or k.shape[2] != q.shape[2]:
        raise ValueError(f"lola_attention needs q, k, v of one shape (batch, heads, length, head_dim), "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    B, H, L, D = q.shape
    cache = init_cache(B, H, window + sparse, D, q.device, q.dtype)
    outs = []
    for t in range(L):
        y, cache = lola_step(q[:, :, t], k[:, :, t], v[:, :, t], cache, window, eps)
        outs.append(y)
    return torch.stack(outs, dim=2)
