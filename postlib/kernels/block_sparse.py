"""Block-sparse attention as one fused Triton kernel: FlashAttention that skips the empty tiles.

PyTorch twin: ``postlib.sparse.attention.blocked_attention`` (the same tiles, gathered
and soft-maxed exactly). Reference: ``postlib.sparse.sparse_attention_reference``
(dense scores masked by ``attention_mask``). ``tests/sparse/test_block_sparse_triton.py``
proves the kernel equal to the reference for every pattern kind, causal and not, at
lengths the tile does not divide (Triton interpreter on CPU, the real kernel on CUDA);
``gpu_check`` below checks and times it on a GPU.

The pattern's tile layout (``Pattern.tile_layout``) arrives in compressed-row form:
query tile I visits key tiles ``col_idx[row_ptr[I]:row_ptr[I+1]]``, the *full* ones
first (every entry allowed: no mask at all) and then the *partial* ones, where the
element mask is evaluated in registers from the pattern's components — the band
|i − j| ≤ h, global-token flags, BigBird's coarse block mask, LongNet's dilated
segments — exactly as ``Pattern.allowed`` does in PyTorch. Tiles outside the layout
are never loaded. Each program owns one query tile of one (batch, head) and keeps
FlashAttention's running max ``m``, denominator ``l`` and output ``acc`` (in base-2
units, see ``postlib.kernels.flash_fwd``). Unlike dense causal attention, a row may
see no key at all (a dilated row that no pair selects), so ``m`` may stay −inf: the
update uses 0 in place of an infinite max, and an empty row writes zeros and lse = −inf.

Backward: ``BlockSparseFunction`` saves q, k, v and, in the backward, recomputes the
output through the PyTorch twin under autograd (same tiles, so memory stays
O(L · keys per row)) and differentiates that: a documented recompute, not a kernel.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._checks import check_positive_int, check_qkv
from . import check_triton_device

MAX_HEAD_DIM = 256
_LOG2E = 1.4426950408889634


@triton.jit
def _element_mask(rows, cols, L, half_window, G, C, coarse_block, coarse_n, P,
                  HAS_BAND: tl.constexpr, HAS_GLOBAL: tl.constexpr, HAS_COARSE: tl.constexpr,
                  N_PAIRS: tl.constexpr, CAUSAL: tl.constexpr):
    """The pattern's mask on a (rows × cols) tile: the union of its components, ∩ causal, ∩ inside."""
    rr = rows[:, None]
    cc = cols[None, :]
    ok = (rr < 0) | (cc < 0)                       # all False, with the tile's shape
    if HAS_BAND:
        d = rr - cc
        ok = ok | ((d <= half_window) & (d >= -half_window))
    if HAS_GLOBAL:
        g_row = tl.load(G + rows, mask=rows < L, other=0)
        g_col = tl.load(G + cols, mask=cols < L, other=0)
        ok = ok | (g_row[:, None] != 0) | (g_col[None, :] != 0)
    if HAS_COARSE:
        inside = (rr < L) & (cc < L)
        block = tl.load(C + (rr // coarse_block) * coarse_n + cc // coarse_block, mask=inside, other=0)
        ok = ok | (block != 0)
    for p in tl.static_range(N_PAIRS):
        w = tl.load(P + 3 * p)
        r = tl.load(P + 3 * p + 1)
        o = tl.load(P + 3 * p + 2)
        ok = ok | ((rr // w == cc // w) & ((rr % w) % r == o) & ((cc % w) % r == o))
    if CAUSAL:
        ok = ok & (cc <= rr)
    return ok & (cc < L)


@triton.jit
def _attend(acc, m_i, l_i, q, k_base, v_base, cols_ptr, lo, hi, offs_m, offs_n, offs_d, offs_dv,
            stride_kn, stride_kd, stride_vn, stride_vd, L, D, DV, qk_scale,
            half_window, G, C, coarse_block, coarse_n, P,
            MASKED: tl.constexpr, HAS_BAND: tl.constexpr, HAS_GLOBAL: tl.constexpr, HAS_COARSE: tl.constexpr,
            N_PAIRS: tl.constexpr, CAUSAL: tl.constexpr, BLOCK: tl.constexpr, PRECISION: tl.constexpr):
    """Merge the key tiles listed in cols_ptr[lo:hi] into the running (acc, m, l) of this query tile."""
    for idx in range(lo, hi):
        keys = tl.load(cols_ptr + idx) * BLOCK + offs_n
        kt = tl.load(k_base + keys[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                     mask=(keys[None, :] < L) & (offs_d[:, None] < D), other=0.0)
        v = tl.load(v_base + keys[:, None] * stride_vn + offs_dv[None, :] * stride_vd,
                    mask=(keys[:, None] < L) & (offs_dv[None, :] < DV), other=0.0)
        s = tl.dot(q, kt, input_precision=PRECISION) * qk_scale
        if MASKED:
            ok = _element_mask(offs_m, keys, L, half_window, G, C, coarse_block, coarse_n, P,
                               HAS_BAND, HAS_GLOBAL, HAS_COARSE, N_PAIRS, CAUSAL)
            s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        # A row with no allowed key so far keeps m = −inf; shift by 0 there so no (−inf) − (−inf) = NaN.
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _block_sparse_fwd_kernel(Q, K, V, O, LSE, ROW_PTR, COL_IDX, FULL_END, G, C, P,
                             stride_qb, stride_qh, stride_qm, stride_qd,
                             stride_kb, stride_kh, stride_kn, stride_kd,
                             stride_vb, stride_vh, stride_vn, stride_vd,
                             stride_ob, stride_oh, stride_om, stride_od,
                             H, L, D, DV, qk_scale, half_window, coarse_block, coarse_n,
                             HAS_BAND: tl.constexpr, HAS_GLOBAL: tl.constexpr, HAS_COARSE: tl.constexpr,
                             N_PAIRS: tl.constexpr, CAUSAL: tl.constexpr, BLOCK: tl.constexpr,
                             D_PAD: tl.constexpr, DV_PAD: tl.constexpr, PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK + tl.arange(0, BLOCK)
    offs_n = tl.arange(0, BLOCK)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, DV_PAD)
    q = tl.load(Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
                mask=(offs_m[:, None] < L) & (offs_d[None, :] < D), other=0.0)
    k_base = K + b * stride_kb + h * stride_kh
    v_base = V + b * stride_vb + h * stride_vh
    m_i = tl.full([BLOCK], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK], dtype=tl.float32)
    acc = tl.zeros([BLOCK, DV_PAD], dtype=tl.float32)
    lo = tl.load(ROW_PTR + pid_m)
    mid = tl.load(FULL_END + pid_m)
    hi = tl.load(ROW_PTR + pid_m + 1)
    acc, m_i, l_i = _attend(acc, m_i, l_i, q, k_base, v_base, COL_IDX, lo, mid, offs_m, offs_n, offs_d, offs_dv,
                            stride_kn, stride_kd, stride_vn, stride_vd, L, D, DV, qk_scale,
                            half_window, G, C, coarse_block, coarse_n, P,
                            False, HAS_BAND, HAS_GLOBAL, HAS_COARSE, N_PAIRS, CAUSAL, BLOCK, PRECISION)
    acc, m_i, l_i = _attend(acc, m_i, l_i, q, k_base, v_base, COL_IDX, mid, hi, offs_m, offs_n, offs_d, offs_dv,
                            stride_kn, stride_kd, stride_vn, stride_vd, L, D, DV, qk_scale,
                            half_window, G, C, coarse_block, coarse_n, P,
                            True, HAS_BAND, HAS_GLOBAL, HAS_COARSE, N_PAIRS, CAUSAL, BLOCK, PRECISION)
    seen = l_i > 0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    lse = tl.where(seen, (m_i + tl.log2(tl.where(seen, l_i, 1.0))) * 0.6931471805599453, float("-inf"))
    tl.store(O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_dv[None, :] * stride_od,
             out.to(O.dtype.element_ty), mask=(offs_m[:, None] < L) & (offs_dv[None, :] < DV))
    tl.store(LSE + pid_bh * L + offs_m, lse, mask=offs_m < L)


def _pattern_arrays(pattern, device):
    """The pattern's components as device arrays (a one-element dummy where a component is absent)."""
    dummy8 = torch.zeros(1, dtype=torch.int8, device=device)
    flags = (pattern.global_flags.to(device=device, dtype=torch.int8) if pattern.global_flags is not None
             else dummy8)
    coarse = (pattern.coarse.to(device=device, dtype=torch.int8).contiguous().flatten()
              if pattern.coarse is not None else dummy8)
    pairs = (torch.tensor(pattern.pairs, dtype=torch.int32, device=device).flatten() if pattern.pairs
             else torch.zeros(1, dtype=torch.int32, device=device))
    return flags, coarse, pairs


def _launch(q, k, v, pattern, tile, scale):
    from ..sparse.layout import layout_csr

    B, H, L, D = q.shape
    DV = v.shape[-1]
    any_, full = pattern.tile_layout(tile)
    row_ptr, col_idx, full_end = (t.to(q.device) for t in layout_csr(any_, full))
    if col_idx.numel() == 0:
        col_idx = torch.zeros(1, dtype=torch.int32, device=q.device)
    flags, coarse, pairs = _pattern_arrays(pattern, q.device)
    d_pad, dv_pad = max(16, triton.next_power_of_2(D)), max(16, triton.next_power_of_2(DV))
    out = torch.empty((B, H, L, DV), device=q.device, dtype=q.dtype)
    lse = torch.empty((B, H, L), device=q.device, dtype=torch.float32)
    num_warps = 4 if max(d_pad, dv_pad) <= 64 else 8
    num_stages = 1
    if q.is_cuda and torch.cuda.get_device_capability(q.device)[0] >= 8:
        num_stages = 3 if max(d_pad, dv_pad) <= 64 else 2
    grid = (any_.shape[0], B * H)
    _block_sparse_fwd_kernel[grid](
        q, k, v, out, lse, row_ptr, col_idx, full_end, flags, coarse, pairs,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        H, L, D, DV, scale * _LOG2E,
        pattern.half_window if pattern.half_window is not None else 0,
        max(pattern.coarse_block, 1), pattern.coarse.shape[0] if pattern.coarse is not None else 1,
        HAS_BAND=pattern.half_window is not None, HAS_GLOBAL=pattern.global_flags is not None,
        HAS_COARSE=pattern.coarse is not None, N_PAIRS=len(pattern.pairs), CAUSAL=pattern.causal,
        BLOCK=tile, D_PAD=d_pad, DV_PAD=dv_pad, PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        num_warps=num_warps, num_stages=num_stages)
    return out, lse


class BlockSparseFunction(torch.autograd.Function):
    """Forward: the fused kernel. Backward: recompute through ``blocked_attention`` and differentiate it."""

    @staticmethod
    def forward(ctx, q, k, v, pattern, tile, scale):
        out, lse = _launch(q, k, v, pattern, tile, scale)
        ctx.save_for_backward(q, k, v)
        ctx.pattern, ctx.tile, ctx.scale = pattern, tile, scale
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, _grad_lse):
        from ..sparse.attention import blocked_attention

        q, k, v = (t.detach().requires_grad_(True) for t in ctx.saved_tensors)
        with torch.enable_grad():
            out = blocked_attention(q, k, v, ctx.pattern, tile=ctx.tile, scale=ctx.scale)
            dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad_out)
        return dq, dk, dv, None, None, None


def block_sparse_attention_triton(q, k, v, pattern, *, tile: int = 64, scale: float | None = None,
                                  return_lse: bool = False):
    """Fused block-sparse attention, equal to ``masked_attention(q, k, v, pattern.dense())``.

    Args:
        q, k: (batch, heads, length, head_dim); v: (batch, heads, length, head_dim_v);
            float16, bfloat16 (sm80+) or float32, CUDA tensors (or CPU under ``TRITON_INTERPRET=1``).
        pattern: a ``postlib.sparse.masks.Pattern`` of the same length (shared by every head).
        tile: rows and columns per tile, a power of two in [16, 128].
        scale: defaults to 1/√head_dim.
        return_lse: also return the (B, H, L) float32 log-denominators (−inf for an empty row).
    Twin: ``postlib.sparse.attention.blocked_attention``; equality: ``tests/sparse/test_block_sparse_triton.py``.
    """
    check_qkv(q, k, v)
    if q.dtype == torch.float64:
        raise TypeError("the block-sparse kernel supports float16, bfloat16 and float32, got q of dtype float64 "
                        "(Triton's dot has no fp64 path); use sparse_attention(..., backend='torch')")
    check_triton_device(q, k, v)
    check_positive_int(tile, "tile")
    if tile < 16 or tile > 128 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two between 16 and 128 for the Triton kernel, got {tile} "
                         "(backend='torch' accepts any tile)")
    if q.shape[2] != pattern.length or k.shape[2] != pattern.length:
        raise ValueError(f"the pattern is for length {pattern.length}, got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM:
        raise ValueError(f"head_dim must be at most {MAX_HEAD_DIM}, got q {tuple(q.shape)}, v {tuple(v.shape)}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if q.shape[0] * q.shape[1] == 0:   # an empty batch: no program to launch
        out = q.new_zeros(*q.shape[:3], v.shape[-1])
        return (out, q.new_zeros(q.shape[:3], dtype=torch.float32)) if return_lse else out
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        out, lse = BlockSparseFunction.apply(q, k, v, pattern, tile, scale)
    else:
        out, lse = _launch(q, k, v, pattern, tile, scale)
    return (out, lse) if return_lse else out


# --------------------------------------------------------------------------- make gpu-check
GPU_TARGET_SPEEDUP = 3.0   # issue 8: L = 32k, window 1k, bf16: at least 3x faster than dense causal SDPA

_CHECK_PATTERNS = [("sliding", dict(window=65)), ("longformer", dict(window=32, global_tokens=[0, 1, 2, 3])),
                   ("bigbird", dict(block_size=64, num_random_blocks=2, num_global_blocks=1)),
                   ("dilated", dict(segment_lengths=[64, 256, 1024], dilations=[1, 4, 16]))]


def _half_dtype(device: str) -> torch.dtype:
    """bf16 on sm80+, fp16 before (and in the interpreter, whose tl.dot mishandles bf16)."""
    if device.startswith("cuda") and torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16


def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Check the kernel against the fp64 reference for every pattern kind, then time it against dense SDPA.

    Correctness (rel RMS vs ``sparse_attention_reference`` in fp64): fp32 <= 1e-5, fp16/bf16
    <= 5e-3, causal and not, at lengths the tile does not divide. Timing: forward, batch 1,
    8 heads, head_dim 64, bf16 (fp16 before sm80): the causal sliding window of 1024
    (``window=1024``: each token sees itself and 512 earlier ones) at L = 4k … 32k against
    ``scaled_dot_product_attention(is_causal=True)``; the row at L = 32k carries the target
    (speedup >= 3) as its ``ok``. On ``device="cpu"`` (``--smoke``) the same code runs tiny.
    """
    import torch.nn.functional as F

    from ..bench.core import time_fn
    from ..sparse import make_pattern, sparse_attention_reference
    from ..testing import rel_rms

    smoke = not device.startswith("cuda")
    gen = torch.Generator(device="cpu").manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=gen).to(device)  # noqa: E731
    rows: list[dict] = []
    lengths = [37] if smoke else ([1, 300, 1000] if quick else [1, 63, 300, 1000, 2500])
    tile = 16 if smoke else 64
    patterns = _CHECK_PATTERNS[:2] if smoke else _CHECK_PATTERNS
    for dtype in [torch.float32, _half_dtype(device)]:
        tol = 1e-5 if dtype == torch.float32 else 5e-3
        for kind, params in patterns:
            for length in lengths:
                p = dict(params)
                if kind == "longformer":
                    p["global_tokens"] = [g for g in p["global_tokens"] if g < length]
                q, k, v = (rand(1, 2, length, 64) for _ in range(3))
                for causal in (False, True):
                    ref = sparse_attention_reference(q.double(), k.double(), v.double(), kind, causal=causal, **p)
                    pattern = make_pattern(kind, length, causal=causal, **p)
                    with torch.no_grad():
                        out = block_sparse_attention_triton(q.to(dtype), k.to(dtype), v.to(dtype), pattern,
                                                            tile=tile)
                    err = rel_rms(ref, out)
                    rows.append(dict(kernel="block_sparse", check=f"forward vs reference (fp64): {kind}",
                                     dtype=str(dtype).replace("torch.", ""), length=length, head_dim=64,
                                     causal=causal, rel_rms=err, tol=tol, ok=err <= tol))

    timing_dtype = _half_dtype(device)
    if smoke:
        (heads, head_dim, window), timed, repeats, warmup = (2, 16, 32), [128], 1, 1
    else:
        (heads, head_dim, window), repeats, warmup = (8, 64, 1024), 10, 3
        timed = [4096, 32768] if quick else [4096, 8192, 16384, 32768]
    for length in timed:
        q, k, v = (rand(1, heads, length, head_dim).to(timing_dtype) for _ in range(3))
        pattern = make_pattern("sliding", length, causal=True, window=window)
        with torch.no_grad():
            ours = time_fn(lambda: block_sparse_attention_triton(q, k, v, pattern, tile=tile), repeats=repeats,
                           warmup=warmup, device=device)
            dense = time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), repeats=repeats,
                            warmup=warmup, device=device)
        row = dict(kernel="block_sparse", check="timing: causal sliding window vs dense causal SDPA",
                   dtype=str(timing_dtype).replace("torch.", ""), length=length, heads=heads, head_dim=head_dim,
                   window=window, causal=True, triton_ms=ours, sdpa_ms=dense, speedup_vs_sdpa=dense / ours)
        if length == 32768:
            row.update(target=f">= {GPU_TARGET_SPEEDUP:g}x", ok=dense / ours >= GPU_TARGET_SPEEDUP)
        rows.append(row)
    return rows
