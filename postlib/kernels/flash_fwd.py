"""FlashAttention forward as one fused Triton kernel (Dao et al. 2022; Dao 2023).

PyTorch twin: ``postlib.attention.flash.flash_attention_torch`` — the same
online-softmax merge, one key/value tile at a time, whose docstring names this
kernel back; the backward is that module's ``flash_attention_backward_torch``
(tiled PyTorch, wrapped by its ``FlashAttentionFunction``). Reference:
``postlib.attention.softmax_attention``. ``tests/kernels/test_flash_triton.py``
proves the kernel equals the reference (Triton interpreter on CPU, real
kernel on CUDA) and ``gpu_check`` below checks and times it on a GPU.

One program instance owns ``BLOCK_M`` query rows of one (batch, head). It
keeps, per row, the running max ``m``, the running denominator ``l`` and the
un-normalised output ``acc`` in fp32 registers, and streams key/value tiles
of ``BLOCK_N = block_size`` rows through them::

    s    = (q · kᵀ) · scale · log2(e)          scores in base-2 units, so exp2 is exact
    m'   = max(m, rowmax(s))
    p    = exp2(s − m')
    l'   = l · exp2(m − m') + rowsum(p)
    acc' = acc · exp2(m − m') + p · v
    O    = acc / l,   lse = (m + log2 l) · ln 2

Nothing of size L_q × L_k is ever written to memory. Tiles fully inside the
keys and, when causal, fully below every row's diagonal run without masks;
only the last tiles (the key-length edge, the diagonal) are masked, and tiles
beyond the diagonal are never visited. With L_k > L_q the queries are aligned
to the *end* of the keys (``postlib.attention.causal_mask``, the KV-cache
convention): query i sees keys j <= i + (L_k − L_q).

Portability: only fp16/fp32 paths are used on sm75 (Colab T4; bf16 needs
sm80+), warps and pipeline stages are modest, and no Hopper-only feature
(TMA, warp specialisation) is used. Needs Triton >= 3.0 (``input_precision``).
"""
from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from .._checks import CAUSAL_NONFINITE, check_finite, check_number, check_positive_int, check_qkv
from ..attention.flash import FlashAttentionFunction
from . import check_triton_device

MAX_HEAD_DIM = 256
_LOG2E = 1.4426950408889634


@triton.jit
def _attend_tiles(acc, m_i, l_i, q, k_base, v_base, offs_m, offs_n, offs_d, offs_dv, lo, hi,
                  stride_kn, stride_kd, stride_vn, stride_vd, Lk, D, DV, causal_offset, qk_scale,
                  CAUSAL: tl.constexpr, MASKED: tl.constexpr, BLOCK_N: tl.constexpr,
                  PRECISION: tl.constexpr):
    """Merge key/value tiles [lo, hi) into the running (acc, m, l) of this query block."""
    for start_n in range(lo, hi, BLOCK_N):
        keys = start_n + offs_n
        # K is read transposed, (D_PAD, BLOCK_N), so the score tile is a plain dot.
        k_ptrs = k_base + keys[None, :] * stride_kn + offs_d[:, None] * stride_kd
        v_ptrs = v_base + keys[:, None] * stride_vn + offs_dv[None, :] * stride_vd
        if MASKED:
            kt = tl.load(k_ptrs, mask=(keys[None, :] < Lk) & (offs_d[:, None] < D), other=0.0)
            v = tl.load(v_ptrs, mask=(keys[:, None] < Lk) & (offs_dv[None, :] < DV), other=0.0)
        else:
            kt = tl.load(k_ptrs, mask=offs_d[:, None] < D, other=0.0)
            v = tl.load(v_ptrs, mask=offs_dv[None, :] < DV, other=0.0)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        if MASKED:
            visible = keys[None, :] < Lk
            if CAUSAL:
                visible = visible & (keys[None, :] <= offs_m[:, None] + causal_offset)
            s = tl.where(visible, s, float("-inf"))
        # Every row already holds a finite m here: the first tile visited contains
        # key 0, which every row (padding rows included) may see. So m − m_new is
        # never (−inf) − (−inf).
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _flash_fwd_kernel(Q, K, V, O, LSE,
                      stride_qb, stride_qh, stride_qm, stride_qd,
                      stride_kb, stride_kh, stride_kn, stride_kd,
                      stride_vb, stride_vh, stride_vn, stride_vd,
                      stride_ob, stride_oh, stride_om, stride_od,
                      H, Lq, Lk, D, DV, qk_scale,
                      CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                      D_PAD: tl.constexpr, DV_PAD: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D), other=0.0)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, DV_PAD], dtype=tl.float32)

    causal_offset = Lk - Lq
    if CAUSAL:
        # The block's last row sees keys up to (its index + offset); later tiles are skipped.
        hi = tl.minimum(Lk, (pid_m + 1) * BLOCK_M + causal_offset)
        # Keys every row of the block sees: up to the first row's diagonal.
        unmasked_end = tl.minimum(pid_m * BLOCK_M + causal_offset + 1, Lk)
    else:
        hi = Lk
        unmasked_end = Lk
    unmasked_end = (unmasked_end // BLOCK_N) * BLOCK_N
    acc, m_i, l_i = _attend_tiles(acc, m_i, l_i, q, k_base, v_base, offs_m, offs_n, offs_d, offs_dv,
                                  0, unmasked_end, stride_kn, stride_kd, stride_vn, stride_vd,
                                  Lk, D, DV, causal_offset, qk_scale,
                                  CAUSAL, False, BLOCK_N, PRECISION)
    acc, m_i, l_i = _attend_tiles(acc, m_i, l_i, q, k_base, v_base, offs_m, offs_n, offs_d, offs_dv,
                                  unmasked_end, hi, stride_kn, stride_kd, stride_vn, stride_vd,
                                  Lk, D, DV, causal_offset, qk_scale,
                                  CAUSAL, True, BLOCK_N, PRECISION)

    out = acc / l_i[:, None]
    o_ptrs = O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_dv[None, :] * stride_od
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(offs_m[:, None] < Lq) & (offs_dv[None, :] < DV))
    tl.store(LSE + pid_bh * Lq + offs_m, (m_i + tl.log2(l_i)) * 0.6931471805599453, mask=offs_m < Lq)


def _launch_config(device: torch.device, d_pad: int) -> tuple[int, int]:
    """(num_warps, num_stages): modest values that compile on sm75 (64 KiB shared memory) and up."""
    num_warps = 4 if d_pad <= 64 else 8
    if device.type != "cuda":
        return num_warps, 1
    major, _ = torch.cuda.get_device_capability(device)
    if major < 8:
        return num_warps, 1 if d_pad >= 128 else 2
    return num_warps, 3 if d_pad <= 64 else 2


def flash_attention_triton(q, k, v, causal: bool = False, block_size: int = 64, scale: float | None = None,
                           return_lse: bool = False, query_block: int | None = None):
    """Fused FlashAttention forward, equal to ``softmax_attention(q, k, v, causal, scale)``.

    Args:
        q: (batch, heads, L_q, head_dim); k: (batch, heads, L_k, head_dim);
            v: (batch, heads, L_k, head_dim_v). float16, bfloat16 (sm80+) or float32;
            CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``. Any lengths;
            head dims up to 256 (padded to a power of two inside, with masks).
        causal: queries aligned to the end of the keys (needs L_k >= L_q).
        block_size: key/value tile length, a power of two in [16, 256] (``tl.dot`` needs >= 16).
        scale: defaults to 1/sqrt(head_dim).
        return_lse: also return the per-row log-sum-exp (B, H, L_q) in float32.
        query_block: query rows per program (B_r in the paper), a power of two >= 16;
            default 64 on CUDA, the smallest that covers L_q (up to 64) under the interpreter.
    Returns: (batch, heads, L_q, head_dim_v) in q's dtype (accumulated in fp32).

    Twin: ``postlib.attention.flash.flash_attention_torch``; equality:
    ``tests/kernels/test_flash_triton.py``. Differentiable: the backward
    (``postlib.attention.flash.flash_attention_backward_torch``, beside the twin)
    is tiled PyTorch that recomputes probabilities from the saved log-sum-exp,
    so it too never holds an L_q × L_k matrix; only the forward is a fused kernel.
    Causal attention refuses non-finite q, k, v (0·NaN would reach earlier rows).
    """
    check_qkv(q, k, v)
    if q.dtype == torch.float64:
        raise TypeError("flash_attention_triton supports float16, bfloat16 and float32 inputs, got q of dtype "
                        "float64 (Triton's dot has no fp64 path); use flash_attention(..., backend='torch')")
    check_triton_device(q, k, v)
    check_positive_int(block_size, "block_size")
    if block_size < 16 or block_size > 256 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two between 16 and 256 for the Triton kernel, "
                         f"got {block_size} (backend='torch' accepts any block_size)")
    Lq, D, Lk, DV = q.shape[2], q.shape[3], k.shape[2], v.shape[-1]
    if causal and Lk < Lq:
        raise ValueError(f"causal attention needs L_k >= L_q, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if max(D, DV) > MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be at most {MAX_HEAD_DIM} for the Triton kernel, got q {tuple(q.shape)}, "
                         f"v {tuple(v.shape)}")
    if query_block is not None:
        check_positive_int(query_block, "query_block")
        if query_block < 16 or query_block > 256 or query_block & (query_block - 1):
            raise ValueError(f"query_block must be a power of two between 16 and 256, got {query_block}")
    if causal:
        for t, name in ((q, "q"), (k, "k"), (v, "v")):
            check_finite(t, name, CAUSAL_NONFINITE)
    scale = 1.0 / math.sqrt(D) if scale is None else check_number(scale, "scale")
    launch = functools.partial(_launch, causal=bool(causal), block_size=block_size, scale=scale,
                               query_block=query_block)
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        out, lse = FlashAttentionFunction.apply(q, k, v, bool(causal), scale, block_size, launch)
    else:
        out, lse = launch(q, k, v)
    return (out, lse) if return_lse else out


def _launch(q, k, v, *, causal, block_size, scale, query_block):
    """Run the kernel on validated inputs; returns (out, lse)."""
    B, H, Lq, D = q.shape
    Lk, DV = k.shape[2], v.shape[-1]
    d_pad = max(16, triton.next_power_of_2(D))
    dv_pad = max(16, triton.next_power_of_2(DV))
    if query_block is None:
        block_m = 64 if q.is_cuda else min(64, max(16, triton.next_power_of_2(Lq)))
    else:
        block_m = query_block
    num_warps, num_stages = _launch_config(q.device, max(d_pad, dv_pad))
    out = torch.empty((B, H, Lq, DV), device=q.device, dtype=q.dtype)
    lse = torch.empty((B, H, Lq), device=q.device, dtype=torch.float32)
    grid = (triton.cdiv(Lq, block_m), B * H)
    try:
        _flash_fwd_kernel[grid](
            q, k, v, out, lse, *q.stride(), *k.stride(), *v.stride(), *out.stride(),
            H, Lq, Lk, D, DV, scale * _LOG2E,
            CAUSAL=bool(causal), BLOCK_M=block_m, BLOCK_N=block_size, D_PAD=d_pad, DV_PAD=dv_pad,
            PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
            num_warps=num_warps, num_stages=num_stages)
    except triton.runtime.errors.OutOfResources as err:
        raise RuntimeError(f"the flash kernel does not fit this GPU with head_dim {max(D, DV)} and "
                           f"block_size {block_size}; try block_size={max(16, block_size // 2)}") from err
    return out, lse


# --------------------------------------------------------------------------- make gpu-check
def _half_dtypes(device: str) -> list[torch.dtype]:
    """fp16 everywhere; bf16 only on sm80+ GPUs (and not in the interpreter, whose tl.dot mishandles bf16)."""
    if device.startswith("cuda") and torch.cuda.get_device_capability(device)[0] >= 8:
        return [torch.float16, torch.bfloat16]
    return [torch.float16]


def _attention_flops(batch, heads, lq, lk, head_dim, causal) -> float:
    """Two matmuls of 2·L_q·L_k·D each; causal work is about half (the convention FlashAttention papers use)."""
    flops = 4.0 * batch * heads * lq * lk * head_dim
    return flops / 2 if causal else flops


def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Check the kernel against the fp64 reference, then time it against PyTorch's SDPA.

    Correctness (rel RMS vs ``softmax_attention`` in fp64): fp32 must be <= 1e-5,
    fp16/bf16 <= 5e-3 (fla's budget), at awkward lengths, causal and not, with a
    padded head_dim. Timing: forward, batch 4, 8 heads, head_dim 64, bf16 (fp16
    before sm80) at L = 1024 … 8192, causal and not, against
    ``torch.nn.functional.scaled_dot_product_attention``; reports ms, TFLOP/s and
    ``speedup_vs_sdpa`` = sdpa_ms / triton_ms. On ``device="cpu"`` (the ``--smoke``
    run under TRITON_INTERPRET=1) the same code runs at tiny sizes.
    """
    import torch.nn.functional as F

    from ..attention import softmax_attention
    from ..bench.core import time_fn
    from ..testing import rel_rms

    smoke = not device.startswith("cuda")
    gen = torch.Generator(device="cpu").manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=gen).to(device)  # noqa: E731
    rows: list[dict] = []
    if smoke:
        shapes, head_dims, block = [(1, 1), (7, 7), (13, 40)], [16, 24], 16
    elif quick:
        shapes, head_dims, block = [(1, 1), (63, 63), (100, 300), (1000, 1000)], [64, 24], 64
    else:
        shapes, head_dims, block = [(1, 1), (7, 7), (63, 63), (100, 300), (500, 500), (1000, 1000)], [64, 24, 128], 64
    for dtype in [torch.float32, *_half_dtypes(device)]:
        tol = 1e-5 if dtype == torch.float32 else 5e-3
        for head_dim in head_dims:
            for lq, lk in shapes:
                q, k, v = rand(2, 3, lq, head_dim), rand(2, 3, lk, head_dim), rand(2, 3, lk, head_dim)
                for causal in (False, True):
                    ref = softmax_attention(q.double(), k.double(), v.double(), causal=causal)
                    with torch.no_grad():
                        out = flash_attention_triton(q.to(dtype), k.to(dtype), v.to(dtype), causal=causal,
                                                     block_size=block)
                    err = rel_rms(ref, out)
                    rows.append(dict(kernel="flash_fwd", check="forward vs softmax_attention (fp64)",
                                     dtype=str(dtype).replace("torch.", ""), length_q=lq, length_k=lk,
                                     head_dim=head_dim, causal=causal, rel_rms=err, tol=tol, ok=err <= tol))

    timing_dtype = _half_dtypes(device)[-1]
    if smoke:
        (batch, heads, head_dim), lengths, repeats, warmup = (1, 2, 16), [64, 128], 1, 1
    else:
        (batch, heads, head_dim), repeats, warmup = (4, 8, 64), 10, 3
        lengths = [1024, 4096] if quick else [1024, 2048, 4096, 8192]
    for length in lengths:
        q, k, v = (rand(batch, heads, length, head_dim).to(timing_dtype) for _ in range(3))
        for causal in (False, True):
            with torch.no_grad():
                ours = time_fn(lambda: flash_attention_triton(q, k, v, causal=causal, block_size=64 if not smoke
                                                              else 16), repeats=repeats, warmup=warmup,
                               device=device)
                sdpa = time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                               repeats=repeats, warmup=warmup, device=device)
            flops = _attention_flops(batch, heads, length, length, head_dim, causal)
            rows.append(dict(kernel="flash_fwd", check="timing forward vs SDPA",
                             dtype=str(timing_dtype).replace("torch.", ""), length_q=length, length_k=length,
                             batch=batch, heads=heads, head_dim=head_dim, causal=causal,
                             triton_ms=ours, sdpa_ms=sdpa, triton_tflops=flops / ours / 1e9,
                             sdpa_tflops=flops / sdpa / 1e9, speedup_vs_sdpa=sdpa / ours))
    return rows
