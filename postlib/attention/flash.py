"""FlashAttention-style tiled attention: the same result, O(L) memory.

Dao et al. (2022) never build the (L × L) score matrix. Keys and values are
visited one tile at a time, and each query row keeps three running numbers:
its max score ``m``, the softmax denominator ``l`` and the un-normalised
output ``acc``. When a new tile brings scores ``s`` with max ``m_new``::

    m' = max(m, m_new)
    l' = l·e^{m−m'} + Σ e^{s−m'}
    acc' = acc·e^{m−m'} + e^{s−m'} V_tile

and at the end ``O = acc / l``. This *online-softmax merge* is derived with
sympy in chapter 1 (``postlib.attention.derive``) and tested there.

``flash_attention(..., backend="torch")`` is that loop in PyTorch;
``backend="triton"`` is the fused kernel in ``postlib.kernels.flash_fwd``.
Both equal ``softmax_attention`` (``tests/attention/test_flash.py``).
"""
from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_positive_int, check_qkv


def online_softmax_update(m, l, acc, scores, v_tile):
    """One merge step of the online softmax (the equations above).

    m, l: (..., L_q); acc: (..., L_q, Dv); scores: (..., L_q, T); v_tile: (..., T, Dv).
    Rows whose scores are all -inf (fully masked so far) stay at m=-inf, l=0.
    """
    m_new = torch.maximum(m, scores.amax(dim=-1))
    # A fully masked row has m_new = -inf; use 0 there so exp() gives 0, not NaN.
    m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
    correction = torch.exp(m - m_safe)
    p = torch.exp(scores - m_safe[..., None])
    l = l * correction + p.sum(dim=-1)
    acc = acc * correction[..., None] + torch.matmul(p, v_tile)
    return m_new, l, acc


def flash_attention_torch(q, k, v, causal=False, block_size=64, scale=None, return_stats=False):
    """Tiled online-softmax attention in PyTorch. Memory O(L_q · block_size), never O(L_q · L_k).

    Computes in float32 (or float64 for float64 inputs) and returns q's dtype.
    With ``return_stats=True`` also returns the per-row log-sum-exp (the
    statistic a backward pass needs).
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    B, H, Lq, _ = q.shape
    Lk, Dv = k.shape[2], v.shape[-1]
    offset = Lk - Lq  # queries aligned to the end of the keys (KV-cache convention)
    qs = q.to(work) * scale
    m = torch.full((B, H, Lq), float("-inf"), device=q.device, dtype=work)
    l = torch.zeros((B, H, Lq), device=q.device, dtype=work)
    acc = torch.zeros((B, H, Lq, Dv), device=q.device, dtype=work)
    rows = torch.arange(Lq, device=q.device)[:, None] + offset
    for start in range(0, Lk, block_size):
        if causal and start > Lq - 1 + offset:
            break  # every later tile is in the future of every query
        end = min(start + block_size, Lk)
        s = torch.matmul(qs, k[:, :, start:end].to(work).transpose(-2, -1))
        if causal and end - 1 > offset:
            cols = torch.arange(start, end, device=q.device)[None, :]
            s = s.masked_fill(cols > rows, float("-inf"))
        m, l, acc = online_softmax_update(m, l, acc, s, v[:, :, start:end].to(work))
    out = (acc / l[..., None]).to(q.dtype)
    if return_stats:
        return out, (m + torch.log(l))
    return out


def flash_attention(q, k, v, causal: bool = False, block_size: int = 64, backend: str = "auto",
                    scale: float | None = None) -> torch.Tensor:
    """Tiled attention equal to ``softmax_attention(q, k, v, causal)``.

    Args:
        q: (batch, heads, L_q, head_dim); k, v: (batch, heads, L_k, head_dim).
        causal: mask the future (queries aligned to the end of the keys).
        block_size: key/value tile length (any length works, not only multiples).
        backend: ``"torch"`` (reference tiling), ``"triton"`` (fused kernel; on CPU
            it needs ``TRITON_INTERPRET=1``), or ``"auto"`` (Triton on CUDA, else torch).
    """
    check_qkv(q, k, v)
    check_positive_int(block_size, "block_size")
    check_choice(backend, "backend", ("auto", "torch", "triton"))
    if causal and k.shape[2] < q.shape[2]:
        raise ValueError(f"causal attention needs L_k >= L_q, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if backend == "auto":
        from ..kernels import triton_available
        # The fused kernel tiles in powers of two (tl.dot needs >= 16); other tile sizes run the torch loop.
        kernel_tile = 16 <= block_size <= 256 and block_size & (block_size - 1) == 0
        backend = "triton" if (q.is_cuda and triton_available() and kernel_tile) else "torch"
    if backend == "triton":
        from ..kernels.flash_fwd import flash_attention_triton
        return flash_attention_triton(q, k, v, causal=causal, block_size=block_size, scale=scale)
    return flash_attention_torch(q, k, v, causal=causal, block_size=block_size, scale=scale)
