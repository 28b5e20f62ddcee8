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

The forms, side by side:

* ``flash_attention_torch`` — that loop in PyTorch (the twin of the kernel);
* ``flash_attention_backward_torch`` — the tiled backward (Dao 2023, Alg. 2) that
  recomputes the probabilities from the saved log-sum-exp, and
  ``FlashAttentionFunction``, the autograd Function that pairs a forward with it;
* ``postlib.kernels.flash_fwd.flash_attention_triton`` — the fused Triton forward,
  which uses this module's backward;
* ``flash_attention`` — the dispatcher (``backend="torch" | "triton" | "auto"``).

All equal ``softmax_attention``, values and gradients (``tests/attention/test_flash.py``,
``tests/kernels/test_flash_triton.py``).
"""
from __future__ import annotations

import math

import torch

from .._checks import CAUSAL_NONFINITE, check_choice, check_finite, check_number, check_positive_int, check_qkv


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
    statistic a backward pass needs). Inputs are validated by ``flash_attention``.

    This loop is the twin of the fused Triton kernel
    ``postlib.kernels.flash_fwd.flash_attention_triton``; both equal
    ``softmax_attention`` (tests/attention/test_flash.py, tests/kernels/test_flash_triton.py).
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


def flash_attention_backward_torch(q, k, v, out, lse, grad_out, causal: bool, scale: float, block_size: int = 64):
    """Gradients of attention from the saved (out, lse), one key tile at a time (Dao 2023, Alg. 2).

    With P = exp(S − lse) recomputed per tile instead of stored, and
    Δ_i = Σ_d dO_id · O_id (= Σ_j P_ij dP_ij)::

        dV_tile = Pᵀ dO,   dP = dO V_tileᵀ,   dS = P ∘ (dP − Δ),
        dQ += dS K_tile · scale,   dK_tile = dSᵀ Q · scale

    Memory O(L_q · block_size), never O(L_q · L_k). Computed in fp32 (fp64 for
    fp64 inputs). Tested against autograd through ``softmax_attention``
    (``tests/attention/test_flash.py``, including ``gradcheck`` of
    ``FlashAttentionFunction`` in fp64; ``tests/kernels/test_flash_triton.py``
    through the Triton forward).
    """
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qw, dO = q.to(work), grad_out.to(work)
    Lq, Lk = q.shape[2], k.shape[2]
    delta = (dO * out.to(work)).sum(-1, keepdim=True)
    lse = lse.to(work)[..., None]
    dq = torch.zeros_like(qw)
    dk = torch.empty(k.shape, dtype=work, device=k.device)
    dv = torch.empty(v.shape, dtype=work, device=v.device)
    rows = torch.arange(Lq, device=q.device)[:, None] + (Lk - Lq)
    for start in range(0, Lk, block_size):
        end = min(start + block_size, Lk)
        kt, vt = k[:, :, start:end].to(work), v[:, :, start:end].to(work)
        # (Queries are aligned to the end of the keys, so the last query sees every
        # tile: no tile can be skipped for the whole block of queries here.)
        p = torch.exp(qw @ kt.transpose(-1, -2) * scale - lse)
        if causal:
            p = p.masked_fill(torch.arange(start, end, device=q.device)[None, :] > rows, 0.0)
        dv[:, :, start:end] = p.transpose(-1, -2) @ dO
        ds = p * (dO @ vt.transpose(-1, -2) - delta)
        dq += ds @ kt * scale
        dk[:, :, start:end] = ds.transpose(-1, -2) @ qw * scale
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd for the fused forward: saves only (q, k, v, out, lse), recomputes P in the backward.

    ``forward_fn(q, k, v) -> (out, lse)`` is the Triton launch in normal use; the
    tests pass ``flash_attention_torch`` instead so that ``gradcheck`` can run in fp64.
    """

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_size, forward_fn):
        out, lse = forward_fn(q, k, v)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal, ctx.scale, ctx.block_size = causal, scale, block_size
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, _grad_lse):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = flash_attention_backward_torch(q, k, v, out, lse, grad_out, ctx.causal, ctx.scale,
                                                    ctx.block_size)
        return dq, dk, dv, None, None, None, None


def flash_attention(q, k, v, causal: bool = False, block_size: int = 64, backend: str = "auto",
                    scale: float | None = None) -> torch.Tensor:
    """Tiled attention equal to ``softmax_attention(q, k, v, causal)``.

    Args:
        q: (batch, heads, L_q, head_dim); k, v: (batch, heads, L_k, head_dim).
        causal: mask the future (queries aligned to the end of the keys).
        block_size: key/value tile length (any length works, not only multiples).
        backend: ``"torch"`` (reference tiling), ``"triton"`` (fused kernel; on CPU
            it needs ``TRITON_INTERPRET=1``), or ``"auto"`` (Triton on CUDA, else torch).
        scale: a finite number; defaults to 1/√head_dim.
    Causal attention refuses non-finite q, k, v (0·NaN would reach earlier rows).
    """
    check_qkv(q, k, v)
    check_positive_int(block_size, "block_size")
    check_choice(backend, "backend", ("auto", "torch", "triton"))
    if scale is not None:
        scale = check_number(scale, "scale")
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
    if causal:  # (the Triton kernel checks for itself)
        for t, name in ((q, "q"), (k, "k"), (v, "v")):
            check_finite(t, name, CAUSAL_NONFINITE)
    return flash_attention_torch(q, k, v, causal=causal, block_size=block_size, scale=scale)
