"""Linformer (Wang et al. 2020): attention through a rank-k projection of the sequence axis.

The paper's observation (§3, Fig. 1): the context matrix P = softmax(QKᵀ/√d)
has a fast-decaying singular-value spectrum, so it is close to low rank.
Instead of computing P and then compressing it, project keys and values along
the *length* axis with learned E, F ∈ ℝ^{k×L} (Eq. 7):

    head = softmax( Q (E K)ᵀ / √d ) · (F V)          — (L × k) scores, O(L·k) time and memory.

The reference is that equation itself: ``softmax_attention(q, E@k, F@v)``;
``linformer_attention`` computes the same thing with a single einsum per
projection (tests/attention/test_linformer.py, and tests/attention/test_peers.py
against the ``linformer`` package).

Two guarantees (the paper's §4). Theorem 1 is about P itself: a JL projection R (k × L, entries N(0, 1/k),
k = 5 log L/(ε² − ε³)) keeps P w ≈ P Rᵀ R w — a product *after* the softmax. Eq. 7 projects *inside*
the softmax; Theorem 2 covers that case: for k = min{Θ(9 d log d/ε²), 5 Θ(log L/ε²)} there exist E, F
with ‖softmax(w Eᵀ) F V − softmax(w) V‖ ≤ ε ‖softmax(w)‖ ‖V‖ with probability 1 − o(1), for every row w
of QKᵀ/√d; its proof takes E = δR and F = e^{−δ}R for a small constant δ (``theorem2_projections``).
``theorem2_epsilon`` measures the ε a given pair needs on given inputs.

Why it cannot be causal: row i of E K mixes keys from *every* position, so
query i sees the future through the projection (``causality_leak`` measures it).
"""
from __future__ import annotations

import math

import torch

from .._checks import check_number, check_positive_int, check_qkv, check_tensor
from .softmax import softmax_attention


def _check_projection(P, name: str, length: int):
    check_tensor(P, name, 2, "(k, length)")
    if P.shape[1] != length:
        raise ValueError(f"{name} must have shape (k, length={length}) to project the length axis, "
                         f"got {tuple(P.shape)}")


def linformer_reference(q, k, v, E, F, scale: float | None = None) -> torch.Tensor:
    """Eq. 7 as written: project K and V along the length axis, then ordinary softmax attention."""
    check_qkv(q, k, v)
    _check_projection(E, "E", k.shape[2])
    _check_projection(F, "F", v.shape[2])
    k_proj = torch.matmul(E.to(k.dtype), k)               # (k, L) @ (B, H, L, D) -> (B, H, k, D)
    v_proj = torch.matmul(F.to(v.dtype), v)
    return softmax_attention(q, k_proj, v_proj, scale=scale)


def linformer_attention(q, k, v, E, F, scale: float | None = None) -> torch.Tensor:
    """softmax(Q (E K)ᵀ/√d)(F V) with projections E, F of shape (k, length).

    Args:
        q: (batch, heads, L_q, head_dim); k, v: (batch, heads, L, head_dim[_v]).
        E, F: (k, L) — the rank-k length projections (may be the same tensor: "shared").
    Cost O(L·k·d). Equals ``linformer_reference`` (tests/attention/test_linformer.py).
    """
    check_qkv(q, k, v)
    _check_projection(E, "E", k.shape[2])
    _check_projection(F, "F", v.shape[2])
    if E.shape[0] != F.shape[0]:
        raise ValueError(f"E and F must have the same rank k, got E {tuple(E.shape)} and F {tuple(F.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number(scale, "scale")
    k_proj = torch.einsum("kl,bhld->bhkd", E.to(k.dtype), k)
    v_proj = torch.einsum("kl,bhld->bhkd", F.to(v.dtype), v)
    scores = torch.einsum("bhid,bhkd->bhik", q, k_proj) * scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    return torch.einsum("bhik,bhkd->bhid", torch.softmax(scores.to(work), dim=-1).to(v.dtype), v_proj)


def random_projection(rank: int, length: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """A Johnson–Lindenstrauss projection, entries N(0, 1/k) (the paper's Theorem 1 construction)."""
    check_positive_int(rank, "rank")
    check_positive_int(length, "length")
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rank, length, generator=g, dtype=torch.float64) / math.sqrt(rank)).to(dtype)


def theorem2_projections(rank: int, length: int, delta: float, seed: int = 0,
                         dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The construction in the proof of Linformer's Theorem 2: E = δR, F = e^{−δ}R, with R a JL projection
    (``random_projection``, entries N(0, 1/k)) and δ > 0 a constant. As δ → 0, softmax(w δRᵀ) tends to the
    uniform vector 1/k whatever w, so the output tends to one combination of the values for every query."""
    delta = check_number(delta, "delta", positive=True)
    R = random_projection(rank, length, seed, dtype)
    return delta * R, math.exp(-delta) * R


def theorem2_epsilon(q, k, v, E, F) -> torch.Tensor:
    """The ε each query row needs in Theorem 2's inequality, ‖softmax(wEᵀ)FV − softmax(w)V‖ /
    (‖softmax(w)‖ ‖V‖₂), with ‖V‖₂ the spectral norm (the largest ‖pV‖ over unit p, so the yardstick is
    the largest output any weights of that norm could give). Returns (batch, heads, L_q)."""
    check_qkv(q, k, v)
    P = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    err = (linformer_attention(q, k, v, E, F) - P @ v).norm(dim=-1)
    return err / (P.norm(dim=-1) * torch.linalg.matrix_norm(v, ord=2)[..., None])


def mean_pool_projection(rank: int, length: int, dtype=torch.float64) -> torch.Tensor:
    """Average-pool the sequence into ``rank`` contiguous segments (a deterministic E with rows summing to 1)."""
    check_positive_int(rank, "rank")
    check_positive_int(length, "length")
    if rank > length:
        raise ValueError(f"rank ({rank}) must be <= length ({length}) for mean pooling")
    seg = torch.arange(length) * rank // length
    P = torch.zeros(rank, length, dtype=torch.float64)
    P[seg, torch.arange(length)] = 1.0
    return (P / P.sum(1, keepdim=True)).to(dtype)


def singular_values(P: torch.Tensor) -> torch.Tensor:
    """Singular values of each (L × L) attention matrix in ``P`` (..., L, L), descending."""
    check_tensor(P, "P", None, "(..., L, L)")
    return torch.linalg.svdvals(P.double())


def rank_for_energy(sv: torch.Tensor, fraction: float = 0.9) -> int:
    """Smallest k whose top-k singular values hold ``fraction`` of the squared spectrum (the paper's Fig. 1 y-axis)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    energy = torch.cumsum(sv.double() ** 2, -1) / (sv.double() ** 2).sum(-1, keepdim=True)
    return int((energy < fraction - 1e-12).sum(-1).max().item()) + 1


def causality_leak(q, k, v, E, F, position: int) -> float:
    """How much output ``position`` changes when only tokens *after* it change (0 for a causal map)."""
    check_qkv(q, k, v)
    out = linformer_attention(q, k, v, E, F)
    k2, v2 = k.clone(), v.clone()
    g = torch.Generator().manual_seed(1)
    k2[:, :, position + 1:] = torch.randn(k2[:, :, position + 1:].shape, generator=g, dtype=k.dtype)
    v2[:, :, position + 1:] = torch.randn(v2[:, :, position + 1:].shape, generator=g, dtype=v.dtype)
    out2 = linformer_attention(q, k2, v2, E, F)
    return (out[:, :, position] - out2[:, :, position]).abs().max().item()
