"""Performer / FAVOR+ (Choromanski et al. 2021): random features for the softmax kernel.

The softmax kernel SM(x, y) = exp(xᵀy) has two random-feature estimators
(ω ~ N(0, I_d), m features, Lemma 1 and Eq. 3 of the paper):

    trigonometric  φ(x) = exp(|x|²/2)/√m · [sin(ωᵢᵀx), cos(ωᵢᵀx)]ᵢ     (2m features)
    positive       φ(x) = exp(−|x|²/2)/√m · [exp(ωᵢᵀx)]ᵢ              (m features, FAVOR+)

Both are unbiased, E[φ(x)ᵀφ(y)] = exp(xᵀy). The trig one can be negative and
its variance blows up exactly where softmax weights are *small* (which is
most of them); the positive one has variance that vanishes as SM → 0.
Drawing the ω's exactly orthogonal (blocks of a random rotation, rows rescaled
to chi-distributed norms) keeps each ω Gaussian and lowers the variance (§2.4).

Attention at the usual 1/√d temperature is SM(q/d^¼, k/d^¼), so
``performer_attention(q, k, v)`` approximates ``softmax_attention(q, k, v)``
and plugs the features into linear attention (causal: prefix sums / RNN).
Tests: ``tests/attention/test_performer.py`` (unbiasedness over seeds, error
falling with m) and ``tests/attention/test_peers.py`` (performer-pytorch).
"""
from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_positive_int, check_qkv, check_tensor
from .linear import EPS, linear_attention_features

KERNELS = ("positive", "trig")


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def gaussian_projection(num_features: int, dim: int, orthogonal: bool = True, seed: int = 0,
                        dtype=torch.float64, device=None) -> torch.Tensor:
    """ω as rows of an (num_features, dim) matrix: iid N(0, I), or orthogonal blocks (§2.4).

    Orthogonal: stack ⌈m/d⌉ blocks, each the Q of a QR decomposition of a Gaussian d×d
    matrix (d orthonormal rows), then give each row the norm of an independent Gaussian
    vector, so every row is still marginally N(0, I) but rows within a block are exactly
    orthogonal. Drawn on CPU in fp64 from ``seed`` (reproducible on every device).
    """
    check_positive_int(num_features, "num_features")
    check_positive_int(dim, "dim")
    g = _generator(seed)
    if not orthogonal:
        w = torch.randn(num_features, dim, generator=g, dtype=torch.float64)
    else:
        blocks = []
        for _ in range(math.ceil(num_features / dim)):
            qmat, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
            qmat = qmat * torch.sign(torch.diagonal(r))[None, :]   # make the rotation Haar-distributed
            blocks.append(qmat.T)
        w = torch.cat(blocks, dim=0)[:num_features]
        norms = torch.randn(num_features, dim, generator=g, dtype=torch.float64).norm(dim=1)
        w = w * norms[:, None]
    return w.to(device=device, dtype=dtype)


def softmax_kernel_features(x: torch.Tensor, projection: torch.Tensor, kernel: str = "positive",
                            stabilizer: torch.Tensor | None = None) -> torch.Tensor:
    """φ(x) for the softmax kernel exp(xᵀy); ``x``: (..., dim), ``projection``: (m, dim).

    Returns (..., m) for ``"positive"`` and (..., 2m) for ``"trig"``. ``stabilizer``
    (positive only) is subtracted inside the exponential; a per-query constant cancels
    in attention's normalisation, which is how fp32 avoids overflow.
    """
    check_tensor(x, "x", None, "(..., dim)")
    check_tensor(projection, "projection", 2, "(num_features, dim)")
    check_choice(kernel, "kernel", KERNELS)
    if projection.shape[1] != x.shape[-1]:
        raise ValueError(f"projection must have shape (num_features, dim={x.shape[-1]}), got {tuple(projection.shape)}")
    m = projection.shape[0]
    wx = x @ projection.to(x.dtype).T
    half_sq = 0.5 * (x * x).sum(-1, keepdim=True)
    if kernel == "positive":
        logits = wx - half_sq
        if stabilizer is not None:
            logits = logits - stabilizer
        return torch.exp(logits) / math.sqrt(m)
    return torch.exp(half_sq) / math.sqrt(m) * torch.cat([torch.sin(wx), torch.cos(wx)], dim=-1)


def performer_features(q, k, projection, kernel: str = "positive", causal: bool = False):
    """φ(Q), φ(K) at attention temperature: inputs scaled by d^(-1/4) so φ(q)·φ(k) ≈ exp(q·k/√d).

    Positive features are stabilised by subtracting each query's max (cancels per row) and,
    when non-causal, the global max over keys (cancels everywhere). Causal keys get no
    data-dependent stabiliser: a max over *future* keys would leak information into the past.
    """
    scale = q.shape[-1] ** -0.25
    qs, ks = q * scale, k * scale
    if kernel == "trig":
        return softmax_kernel_features(qs, projection, "trig"), softmax_kernel_features(ks, projection, "trig")
    w = projection.to(q.dtype)
    q_logits = qs @ w.T - 0.5 * (qs * qs).sum(-1, keepdim=True)
    k_logits = ks @ w.T - 0.5 * (ks * ks).sum(-1, keepdim=True)
    q_stab = q_logits.amax(dim=-1, keepdim=True).detach()
    k_stab = 0.0 if causal else k_logits.amax(dim=(-2, -1), keepdim=True).detach()
    m = projection.shape[0]
    return torch.exp(q_logits - q_stab) / math.sqrt(m), torch.exp(k_logits - k_stab) / math.sqrt(m)


def performer_attention(q, k, v, num_features: int, causal: bool = False, kernel: str = "positive",
                        orthogonal: bool = True, seed: int = 0, projection: torch.Tensor | None = None,
                        backend: str = "auto", eps: float = EPS) -> torch.Tensor:
    """FAVOR+ approximation of ``softmax_attention(q, k, v, causal)`` (same 1/√head_dim scale).

    Args:
        q, k: (batch, heads, length, head_dim); v: (batch, heads, length, head_dim_v).
        num_features: m, the number of random features (≥ 1).
        kernel: ``"positive"`` (FAVOR+) or ``"trig"`` (sin/cos, 2m features).
        orthogonal: orthogonal blocks of ω (lower variance) or iid Gaussian.
        seed: draws ω (ignored when ``projection`` is given).
        projection: an explicit (num_features, head_dim) ω, e.g. to redraw features yourself.
    The reference it approximates is ``softmax_attention``; it equals *exactly*
    ``linear_attention_features`` on ``performer_features`` (the kernel-trick rewrite).
    """
    check_qkv(q, k, v)
    check_positive_int(num_features, "num_features")
    check_choice(kernel, "kernel", KERNELS)
    if projection is None:
        projection = gaussian_projection(num_features, q.shape[-1], orthogonal, seed, dtype=q.dtype, device=q.device)
    elif tuple(projection.shape) != (num_features, q.shape[-1]):
        raise ValueError(f"projection must have shape (num_features={num_features}, head_dim={q.shape[-1]}), "
                         f"got {tuple(projection.shape)}")
    pq, pk = performer_features(q, k, projection, kernel, causal)
    # Trig features can make the denominator ~0 or negative; that instability is the paper's point.
    return linear_attention_features(pq, pk, v, causal=causal, backend=backend, eps=eps if kernel == "positive" else 0.0)


def kernel_estimate(x: torch.Tensor, y: torch.Tensor, num_features: int, kernel: str = "positive",
                    orthogonal: bool = True, seed: int = 0) -> torch.Tensor:
    """The random-feature estimate φ(x)ᵀφ(y) of exp(xᵀy) for vectors x, y of shape (dim,) or (n, dim)
    (row-wise pairs). One draw of ω from ``seed``; average over seeds to see unbiasedness."""
    check_tensor(x, "x", None, "(dim,) or (n, dim)")
    check_tensor(y, "y", None, "(dim,) or (n, dim)")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    w = gaussian_projection(num_features, x.shape[-1], orthogonal, seed, dtype=x.dtype, device=x.device)
    return (softmax_kernel_features(x, w, kernel) * softmax_kernel_features(y, w, kernel)).sum(-1)
