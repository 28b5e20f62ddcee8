"""Softmax attention, the baseline every later chapter is measured against.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V          (Vaswani et al. 2017, Eq. 1)

``softmax_attention`` materialises the full (L_q × L_k) score matrix: it is
the *definition*, and the reference that the tiled ``flash_attention`` and
every approximation in the book are tested against.
"""
from __future__ import annotations

import math

import torch

from .._checks import CAUSAL_NONFINITE, check_finite, check_number, check_qkv


def causal_mask(length_q: int, length_k: int, device=None) -> torch.Tensor:
    """Boolean (L_q, L_k) mask, True where query i may see key j.

    Queries are aligned to the *end* of the keys, so with a KV cache
    (L_k > L_q) the last query sees every key — the decoding convention.
    """
    offset = length_k - length_q
    i = torch.arange(length_q, device=device)[:, None]
    j = torch.arange(length_k, device=device)[None, :]
    return j <= i + offset


def attention_weights(q, k, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """The (B, H, L_q, L_k) matrix softmax(QKᵀ·scale), the thing we draw as an attention map."""
    check_qkv(q, k, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else check_number(scale, "scale")
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if causal:
        scores = scores.masked_fill(~causal_mask(q.shape[2], k.shape[2], q.device), float("-inf"))
    # Half precision softmax loses mass; compute it in at least fp32.
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    return torch.softmax(scores.to(work), dim=-1).to(q.dtype)


def softmax_attention(q, k, v, causal: bool = False, scale: float | None = None) -> torch.Tensor:
    """Reference softmax attention.

    Args:
        q: (batch, heads, L_q, head_dim); k: (batch, heads, L_k, head_dim);
        v: (batch, heads, L_k, head_dim_v).
        causal: mask keys after each query (aligned to the end, see ``causal_mask``).
            Causal attention refuses non-finite q, k, v: a NaN value at a masked
            position would still reach earlier outputs through 0·NaN = NaN.
        scale: a finite number; defaults to 1/√head_dim.
    Returns: (batch, heads, L_q, head_dim_v)
    """
    check_qkv(q, k, v)
    if causal and k.shape[2] < q.shape[2]:
        raise ValueError(f"causal attention needs L_k >= L_q, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if causal:
        for t, name in ((q, "q"), (k, "k"), (v, "v")):
            check_finite(t, name, CAUSAL_NONFINITE)
    return torch.matmul(attention_weights(q, k, causal, scale), v)
