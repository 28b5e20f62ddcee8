"""Retention (Sun et al. 2023, RetNet): a linear recurrence with one fixed decay γ per head.

    o_t = Σ_{s≤t} γ^{t−s} (q_t · k_s) v_s                                   (raw retention, no normalisation)

It is the decayed linear recurrence of ``postlib.recurrent.recurrence`` with a_t = γ_h, and the paper derives
three forms of it:

* parallel (Eq. 5): (QKᵀ ⊙ D) V with the decay matrix D_ts = γ^{t−s} for t ≥ s, else 0 — O(L²) time and memory;
* recurrent (Eq. 6): S_t = γ S_{t−1} + k_tᵀ v_t, o_t = q_t S_t — O(1) memory per token, for decoding;
* chunkwise (Eq. 7): parallel inside chunks, recurrent across them — O(L) memory, for training on long inputs.

``retention_reference`` is the loop over the definition, one output at a time; every form equals it in fp64
(``tests/recurrent/test_retention.py``). The paper's normalisations (the scaling of D, the bound on the row
sums) and the group norm are the mixer's business (``postlib.recurrent.retnet``), not this operator's.

With γ = e^{ΔA} this is a scalar-A state-space model (Mamba-2's SSD with a fixed Δ), and with γ = 1 it is
linear attention's numerator: the chapter draws those links from the same code.
"""
from __future__ import annotations

import math

import torch

from .._checks import CAUSAL_NONFINITE, check_choice, check_finite, check_positive_int, check_qkv, check_tensor
from .recurrence import DEFAULT_CHUNK, recurrence_chunked, recurrence_recurrent

BACKENDS = ("auto", "parallel", "recurrent", "chunkwise", "triton")


def retnet_gammas(n_heads: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The paper's multi-scale decays (Eq. 8): γ_h = 1 − 2^(−5−h) for h = 0 … n_heads − 1."""
    check_positive_int(n_heads, "n_heads")
    return (1.0 - 2.0 ** (-5.0 - torch.arange(n_heads, dtype=torch.float64))).to(dtype)


def check_gamma(gamma, heads: int | None = None) -> torch.Tensor:
    """gamma must be a float tensor of shape (heads,) with every value strictly inside (0, 1)."""
    check_tensor(gamma, "gamma", 1, "(heads,)")
    if heads is not None and gamma.shape[0] != heads:
        raise ValueError(f"gamma must have shape (heads,) = ({heads},), got {tuple(gamma.shape)}")
    if not torch.isfinite(gamma).all() or (gamma <= 0).any() or (gamma >= 1).any():
        raise ValueError(f"gamma must lie strictly inside (0, 1) (a decay per head), got {gamma.tolist()}")
    return gamma


def decay_matrix(gamma: torch.Tensor, length: int) -> torch.Tensor:
    """D (heads, L, L): D_ts = γ^{t−s} for t ≥ s and 0 above the diagonal (the causal mask and the decay in one)."""
    check_gamma(gamma)
    check_positive_int(length, "length")
    t = torch.arange(length, device=gamma.device, dtype=gamma.dtype)
    dist = t[:, None] - t[None, :]
    log_d = dist * torch.log(gamma)[:, None, None]
    return torch.exp(log_d.masked_fill(dist < 0, float("-inf")))


def forgetting_curve(gamma: torch.Tensor, length: int) -> torch.Tensor:
    """γ^d for distances d = 0 … length − 1: how much a token d steps back still counts (heads, length)."""
    check_gamma(gamma)
    check_positive_int(length, "length")
    d = torch.arange(length, device=gamma.device, dtype=gamma.dtype)
    return torch.exp(d * torch.log(gamma)[:, None])


def half_life(gamma: torch.Tensor) -> torch.Tensor:
    """The distance at which γ^d falls to ½: log ½ / log γ (≈ 0.69/(1 − γ) for γ near 1)."""
    check_gamma(gamma)
    return math.log(0.5) / torch.log(gamma)


def _check(q, k, v, gamma) -> torch.Tensor:
    check_qkv(q, k, v)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"retention is causal: q and k must have the same length, got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}")
    check_gamma(gamma, q.shape[1])
    if gamma.device != q.device:
        raise TypeError(f"gamma is on {gamma.device} but q is on {q.device}; all inputs must share a device")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_finite(t, name, CAUSAL_NONFINITE)
    # Decays stay in at least fp32: in bf16, 1 − 2^-9 already rounds to 1.
    return gamma.to(q.dtype) if q.dtype in (torch.float32, torch.float64) else gamma.float()


def retention_reference(q, k, v, gamma):
    """The definition, one output at a time: o_t = Σ_{s≤t} γ^{t−s} (q_t · k_s) v_s. The form every other equals."""
    gamma = _check(q, k, v, gamma)
    L = q.shape[2]
    out = torch.empty(*q.shape[:3], v.shape[-1], dtype=v.dtype, device=v.device)
    for t in range(L):
        weights = (gamma[:, None] ** torch.arange(t, -1, -1, device=q.device)).to(q.dtype)   # γ^{t−s}, s = 0 … t
        scores = torch.einsum("bhd,bhsd->bhs", q[:, :, t], k[:, :, :t + 1]) * weights
        out[:, :, t] = torch.einsum("bhs,bhsv->bhv", scores, v[:, :, :t + 1])
    return out


def retention_parallel(q, k, v, gamma):
    """Eq. 5: (QKᵀ ⊙ D) V. Materialises D and the scores: O(L²) memory per head (1 GiB at L = 16384 in fp32).

    Equals ``retention_reference`` (tests/recurrent/test_retention.py).
    """
    gamma = _check(q, k, v, gamma)
    return ((q @ k.transpose(-1, -2)) * decay_matrix(gamma, q.shape[2]).to(q.dtype)) @ v


def retention_recurrent(q, k, v, gamma, *, initial_state=None, return_state: bool = False):
    """Eq. 6: S_t = γ S_{t−1} + k_tᵀ v_t, o_t = q_t S_t, token by token (``recurrence_recurrent`` with a_t = γ).

    Equals ``retention_reference`` (tests/recurrent/test_retention.py).
    """
    gamma = _check(q, k, v, gamma)
    out, state = recurrence_recurrent(q, k, v, torch.log(gamma), initial_state)
    return (out, state) if return_state else out


def retention_chunkwise(q, k, v, gamma, *, chunk_size: int = DEFAULT_CHUNK, initial_state=None,
                        return_state: bool = False):
    """Eq. 7: parallel inside chunks, recurrent across (``recurrence_chunked`` with a_t = γ). O(L) memory.

    Equals ``retention_reference`` (tests/recurrent/test_retention.py).
    """
    gamma = _check(q, k, v, gamma)
    out, state = recurrence_chunked(q, k, v, torch.log(gamma), chunk_size, initial_state)
    return (out, state) if return_state else out


def retention(q, k, v, gamma, *, backend: str = "auto", chunk_size: int = DEFAULT_CHUNK):
    """Raw retention o_t = Σ_{s≤t} γ_h^{t−s} (q_t · k_s) v_s — no normalisation.

    Args:
        q, k: (batch, heads, length, head_dim); v: (batch, heads, length, head_dim_v).
        gamma: (heads,), every value strictly inside (0, 1).
        backend: ``"parallel"`` ((QKᵀ ⊙ D)V), ``"recurrent"`` (S_t = γS_{t−1} + k_tᵀv_t), ``"chunkwise"``
            (O(L) memory), ``"triton"`` (the chunkwise form as a GPU kernel: ``postlib.kernels.retention``),
            or ``"auto"`` (Triton for CUDA tensors, chunkwise otherwise).
        chunk_size: tokens per chunk for the chunkwise forms.
    Every backend equals ``retention_reference`` (tests/recurrent/test_retention.py,
    tests/kernels/test_retention_triton.py).
    """
    check_choice(backend, "backend", BACKENDS)
    check_positive_int(chunk_size, "chunk_size")
    if backend == "auto":
        backend = "triton" if q.is_cuda else "chunkwise"
    if backend == "parallel":
        return retention_parallel(q, k, v, gamma)
    if backend == "recurrent":
        return retention_recurrent(q, k, v, gamma)
    if backend == "chunkwise":
        return retention_chunkwise(q, k, v, gamma, chunk_size=chunk_size)
    gamma = _check(q, k, v, gamma)
    from ..kernels.retention import triton_decayed_recurrence
    return triton_decayed_recurrence(q, k, v, torch.log(gamma), chunk_size=min(chunk_size, 64))[0]


def retention_states(k, v, gamma: float) -> torch.Tensor:
    """The state S_t = Σ_{s≤t} γ^{t−s} k_sᵀ v_s after every token, for one head: (L, d_k, d_v) (for animations).

    ``k``: (length, d_k); ``v``: (length, d_v); ``gamma``: a float in (0, 1).
    """
    check_tensor(k, "k", 2, "(length, d_k)")
    check_tensor(v, "v", 2, "(length, d_v)")
    if k.shape[0] != v.shape[0]:
        raise ValueError(f"k and v must have the same length, got k {tuple(k.shape)}, v {tuple(v.shape)}")
    g = float(check_gamma(torch.tensor([float(gamma)], dtype=torch.float64))[0])
    outer = k[:, :, None] * v[:, None, :]                                   # k_sᵀ v_s for every s
    states = [outer[0]]
    for t in range(1, k.shape[0]):
        states.append(g * states[-1] + outer[t])                            # Eq. 6, one token at a time
    return torch.stack(states)
