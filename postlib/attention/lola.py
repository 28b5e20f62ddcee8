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

from .._checks import check_choice, check_number, check_positive_int, check_qkv
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
    den = (pk @ zsum[..., None]) + eps                                     # (B, H, M, 1)
    # An empty state recalls nothing (0), not 0/0: the error is then |v|.
    recalled = torch.where(den > 0, (pk @ S) / den.clamp_min(1e-300), torch.zeros_like(v))
    return (v - recalled).norm(dim=-1)


EVICTIONS = ("recall", "oldest")


def lola_step(q_t, k_t, v_t, cache: dict, window: int, eps: float = EPS, evict: str = "recall"):
    """One token: q_t, k_t, v_t of shape (B, H, D). Returns (y_t (B, H, D), new cache).

    The new (k, v) joins the M cached pairs; of the M + 1, the one to leave is an empty slot if any, never
    one of the last ``window`` tokens, else the one the state recalls best (smallest self-recall error;
    ``evict="oldest"``: the oldest one instead, the ablation LoLA's paper compares against).
    It is folded into (S, z); the output reads the cache exactly and the state linearly."""
    t = cache["t"]
    B, H, M, D = cache["k"].shape
    k = torch.cat([cache["k"], k_t[:, :, None]], dim=2)                  # M + 1 candidates
    v = torch.cat([cache["v"], v_t[:, :, None]], dim=2)
    pos = torch.cat([cache["pos"], torch.full((B, H, 1), t, dtype=torch.long, device=k.device)], dim=2)
    S, zsum = cache["S"], cache["zsum"]
    # Who leaves: an empty slot if any (−inf), never a window token (+inf), else the best-recalled one.
    err = self_recall_error(k, v, S, zsum, eps).detach() if evict == "recall" else pos.to(k.dtype)
    err = torch.where(pos > t - window, torch.full_like(err, float("inf")), err)
    err = torch.where(pos < 0, torch.full_like(err, float("-inf")), err)
    drop = err.argmin(dim=-1, keepdim=True)                               # (B, H, 1)
    gone = lambda x: x.gather(2, drop[..., None].expand(-1, -1, -1, D))[:, :, 0]   # noqa: E731
    gone_valid = (pos.gather(2, drop) >= 0).to(k.dtype)                   # (B, H, 1): an empty slot adds nothing
    pk_out = apply_feature_map(gone(k)) * gone_valid
    S = S + pk_out[..., :, None] * gone(v)[..., None, :]
    zsum = zsum + pk_out
    slots = torch.arange(M, device=k.device)[None, None]
    keep = slots + (slots >= drop)                                        # every slot but the dropped one
    k, v = (x.gather(2, keep[..., None].expand(-1, -1, -1, D)) for x in (k, v))
    pos = pos.gather(2, keep)
    # Read: exact exponential kernel over valid cache entries + the linear state.
    scores = (k @ q_t[..., None])[..., 0] / math.sqrt(D)
    w = torch.exp(scores.clamp(max=SCORE_CLAMP)) * (pos >= 0).to(k.dtype)
    pq = apply_feature_map(q_t)[:, :, None]                               # (B, H, 1, D)
    num = (w[:, :, None] @ v)[:, :, 0] + (pq @ S)[:, :, 0]
    den = w.sum(-1) + (pq @ zsum[..., None])[:, :, 0, 0]
    y = num / (den[..., None] + eps)
    return y, {"k": k, "v": v, "pos": pos, "S": S, "zsum": zsum, "t": t + 1}


def lola_attention(q, k, v, window: int = 4, sparse: int = 4, eps: float = EPS, evict: str = "recall") -> torch.Tensor:
    """Causal LoLA-style attention over (batch, heads, length, head_dim) tensors (head_dim_v = head_dim).
    ``evict``: which pair leaves the cache — ``"recall"`` (LoLA's self-recall error) or ``"oldest"``."""
    check_qkv(q, k, v)
    check_choice(evict, "evict", EVICTIONS)
    check_positive_int(window, "window")
    check_positive_int(sparse, "sparse", minimum=0)
    eps = check_number(eps, "eps", nonnegative=True)
    if v.shape[-1] != q.shape[-1] or k.shape[2] != q.shape[2]:
        raise ValueError(f"lola_attention needs q, k, v of one shape (batch, heads, length, head_dim), "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    B, H, L, D = q.shape
    cache = init_cache(B, H, window + sparse, D, q.device, q.dtype)
    outs = []
    # unbind, not q[:, :, t]: the backward of L index operations would write L full-length zero gradients
    # (O(L²) in training); unbind's backward is one stack.
    for q_t, k_t, v_t in zip(q.unbind(2), k.unbind(2), v.unbind(2)):
        y, cache = lola_step(q_t, k_t, v_t, cache, window, eps, evict)
        outs.append(y)
    return torch.stack(outs, dim=2)


def lola_memory_trace(k, v, window: int = 4, sparse: int = 4, eps: float = EPS) -> torch.Tensor:
    """Which tokens the cache holds after each step, for one sequence and head: k, v (length, head_dim) →
    (length, window + sparse) int64 positions (−1: an empty slot). A position j ≤ t not in row t is in
    the linear state; the last ``window`` positions are the window, the others the sparse cache."""
    check_positive_int(window, "window")
    check_positive_int(sparse, "sparse", minimum=0)
    L, D = k.shape
    cache = init_cache(1, 1, window + sparse, D, k.device, k.dtype)
    rows = []
    for t in range(L):
        _, cache = lola_step(k[None, None, t], k[None, None, t], v[None, None, t], cache, window, eps)
        rows.append(cache["pos"][0, 0].clone())
    return torch.stack(rows)


def recall_probe(n_pairs: int, head_dim: int, sharpness: float = 6.0, seed: int = 0):
    """An associative-recall test of the attention operator alone (no training): ``n_pairs`` tokens store
    (k_j, v_j), k_j = sharpness · a random unit vector; then ``n_pairs`` query tokens ask for them in a random
    order, q = k_j of the pair asked (their own keys are further random directions, their values 0).
    Returns q, k, v of shape (1, 1, 2·n_pairs, head_dim) and the index of the pair each query asks for; a
    sharpness of 6 gives a matching score q·k/√d of 36/√d."""
    check_positive_int(n_pairs, "n_pairs")
    check_positive_int(head_dim, "head_dim")
    g = torch.Generator().manual_seed(seed)
    units = torch.nn.functional.normalize(torch.randn(2 * n_pairs, head_dim, generator=g, dtype=torch.float64), dim=-1)
    k = sharpness * units
    v = torch.randn(2 * n_pairs, head_dim, generator=g, dtype=torch.float64)
    v[n_pairs:] = 0.0
    asked = torch.randperm(n_pairs, generator=g)
    q = torch.randn(2 * n_pairs, head_dim, generator=g, dtype=torch.float64)
    q[n_pairs:] = k[asked]
    return q[None, None], k[None, None], v[None, None], asked


def recall_error(out: torch.Tensor, v: torch.Tensor, asked: torch.Tensor) -> float:
    """Mean over the query tokens of ‖y_t − v_asked‖ / ‖v_asked‖ (0: perfect recall; about 1: nothing)."""
    n = len(asked)
    target = v[0, 0, asked]
    return float(((out[0, 0, n:] - target).norm(dim=-1) / target.norm(dim=-1)).mean())
