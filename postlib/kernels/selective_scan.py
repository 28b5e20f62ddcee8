"""Mamba's selective scan as a Triton kernel. PyTorch twin: ``postlib.ssm.scan`` (backend="sequential").

What "hardware-aware" means here (Gu & Dao 2023, §3.3): the state tensor (batch, dim, L, N) is
never written to GPU main memory. Each program owns one batch row and BLOCK_D channels; it walks
along L in blocks of BLOCK_L:

1. load u, Δ (BLOCK_D, BLOCK_L) and B, C (BLOCK_N, BLOCK_L) tiles from main memory (HBM);
2. in registers/SRAM: Δ ← softplus(Δ + bias), a = exp(Δ A), b = Δ B u (BLOCK_D, BLOCK_N, BLOCK_L);
3. an associative scan along the block (``tl.associative_scan`` with the combine
   (a₁, b₁)∘(a₂, b₂) = (a₁a₂, a₂b₁ + b₂)) gives the block-local states and cumulative decays;
4. the state carried in from the previous block is added: h = Πa · h_carry + h_local;
5. y = Σ_n h C (+ D u)(· silu z) is written back (BLOCK_D, BLOCK_L); the last column is the new carry.

So main-memory traffic is the minimum: u, Δ, B, C, z in, y out — O(batch·dim·L), not ·N. Carrying
the state between blocks keeps the cost linear in L (long sequences don't fall off a cliff).
Gradients: the backward pass recomputes the forward through ``postlib.ssm.scan``'s chunked form
under autograd (exact, slower than a dedicated backward kernel; the forward is the kernel).
``tests/kernels/test_selective_scan.py`` checks it against the sequential loop under TRITON_INTERPRET=1.
"""
from __future__ import annotations

import torch

from . import check_triton_device, triton_available

if triton_available():
    import triton
    import triton.language as tl

    @triton.jit
    def _combine(a1, b1, a2, b2):
        # (a₂, b₂) after (a₁, b₁): x ↦ a₂(a₁x + b₁) + b₂
        return a1 * a2, a2 * b1 + b2

    @triton.jit
    def _selective_scan_fwd(u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, y_ptr, last_ptr,
                            dim, L, N, sBb, sBg, sBn, sBl, sCb, sCg, sCn, sCl, ch_per_group,
                            HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
                            SOFTPLUS: tl.constexpr, FP64: tl.constexpr,
                            BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr):
        cdt = tl.float64 if FP64 else tl.float32
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < dim
        mask_n = offs_n < N
        mask_dn = mask_d[:, None] & mask_n[None, :]
        A = tl.load(A_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask_dn, other=0.0).to(cdt)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(cdt)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(cdt)
        group = offs_d // ch_per_group
        h = tl.zeros((BLOCK_D, BLOCK_N), dtype=cdt)
        row = pid_b * dim * L + offs_d[:, None] * L
        last_col = (tl.arange(0, BLOCK_L) == BLOCK_L - 1)[None, None, :]
        for l0 in range(0, L, BLOCK_L):
            offs_l = l0 + tl.arange(0, BLOCK_L)
            mask_l = offs_l < L
            m2 = mask_d[:, None] & mask_l[None, :]
            u = tl.load(u_ptr + row + offs_l[None, :], mask=m2, other=0.0).to(cdt)
            dt = tl.load(dt_ptr + row + offs_l[None, :], mask=m2, other=0.0).to(cdt)
            if HAS_BIAS:
                dt = dt + bias[:, None]
            if SOFTPLUS:   # torch's softplus: identity above 20
                dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
            dt = tl.where(m2, dt, 0.0)   # past the end: a = 1, b = 0, the state passes through unchanged
            m3 = mask_dn[:, :, None] & mask_l[None, None, :]
            b_off = (pid_b * sBb + group[:, None, None] * sBg + offs_n[None, :, None] * sBn
                     + offs_l[None, None, :] * sBl)
            c_off = (pid_b * sCb + group[:, None, None] * sCg + offs_n[None, :, None] * sCn
                     + offs_l[None, None, :] * sCl)
            Bv = tl.load(B_ptr + b_off, mask=m3, other=0.0).to(cdt)
            Cv = tl.load(C_ptr + c_off, mask=m3, other=0.0).to(cdt)
            a = tl.exp(dt[:, None, :] * A[:, :, None])                 # (BLOCK_D, BLOCK_N, BLOCK_L)
            b = (dt * u)[:, None, :] * Bv
            a_cum, h_local = tl.associative_scan((a, b), axis=2, combine_fn=_combine)
            hs = a_cum * h[:, :, None] + h_local
            y = tl.sum(hs * Cv, axis=1)                                # (BLOCK_D, BLOCK_L)
            if HAS_D:
                y = y + Dv[:, None] * u
            if HAS_Z:
                z = tl.load(z_ptr + row + offs_l[None, :], mask=m2, other=0.0).to(cdt)
                y = y * z / (1.0 + tl.exp(-z))
            tl.store(y_ptr + row + offs_l[None, :], y.to(y_ptr.dtype.element_ty), mask=m2)
            h = tl.sum(tl.where(last_col, hs, 0.0), axis=2)
        tl.store(last_ptr + (pid_b * dim + offs_d[:, None]) * N + offs_n[None, :],
                 h.to(last_ptr.dtype.element_ty), mask=mask_dn)


def _bc_strides(M: torch.Tensor, dim: int):
    """(s_batch, s_group, s_n, s_l, channels_per_group) addressing B or C in every layout."""
    if M.dim() == 2:                      # (dim, N): one row per channel, constant in time
        return 0, M.stride(0), M.stride(1), 0, 1
    if M.dim() == 3:                      # (batch, N, L): shared by all channels
        return M.stride(0), 0, M.stride(1), M.stride(2), 1
    return M.stride(0), M.stride(1), M.stride(2), M.stride(3), dim // M.shape[1]


def _forward_kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, block_l=None):
    import triton
    bsz, dim, L = u.shape
    N = A.shape[1]
    u, delta, A = u.contiguous(), delta.contiguous(), A.contiguous()
    z = z.contiguous() if z is not None else None
    y = torch.empty_like(u)
    last = torch.empty(bsz, dim, N, device=u.device, dtype=u.dtype)
    BLOCK_N = triton.next_power_of_2(N)
    BLOCK_D = max(1, min(triton.next_power_of_2(dim), 4096 // (BLOCK_N * 32), 16))
    BLOCK_L = block_l or min(triton.next_power_of_2(L), 64 if BLOCK_N <= 16 else 32)
    grid = (bsz, triton.cdiv(dim, BLOCK_D))
    dummy = u
    _selective_scan_fwd[grid](
        u, delta, A, B, C, D if D is not None else dummy, z if z is not None else dummy,
        delta_bias if delta_bias is not None else dummy, y, last,
        dim, L, N, *_bc_strides(B, dim)[:4], *_bc_strides(C, dim)[:4], _bc_strides(B, dim)[4],
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=bool(delta_softplus), FP64=u.dtype == torch.float64,
        BLOCK_D=BLOCK_D, BLOCK_N=BLOCK_N, BLOCK_L=BLOCK_L)
    return y, last


class _SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        y, last = _forward_kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)
        ctx.delta_softplus = delta_softplus
        ctx.mark_non_differentiable(last)
        return y, last

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        from ..ssm.scan import selective_scan
        saved = ctx.saved_tensors
        with torch.enable_grad():
            inputs = [t.detach().requires_grad_(t.requires_grad) if t is not None else None for t in saved]
            y = selective_scan(*inputs, delta_softplus=ctx.delta_softplus, backend="chunked")
            wanted = [t for t in inputs if t is not None and t.requires_grad]
            grads = iter(torch.autograd.grad(y, wanted, grad_y, allow_unused=True))
        out = [next(grads) if (t is not None and t.requires_grad) else None for t in inputs]
        return (*out, None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The kernel behind ``selective_scan(..., backend="triton")``: returns (y, last_state). Inputs are validated there."""
    check_triton_device(u)
    return _SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Correctness vs the fp64 reference (fp32, Mamba's tolerances) and speed vs the PyTorch loop.

    Effective bandwidth counts the minimal bytes (u, Δ, z in; B, C in; y out) over the kernel's time,
    beside the device's measured copy bandwidth (a large tensor copy counts one read and one write).
    On ``device="cpu"`` (the runner's --smoke mode, Triton interpreter) the sizes are tiny and the
    speed rows only prove the code path: their timings mean nothing and are not held to the targets.
    """
    from ..bench import time_fn
    from ..ssm.scan import selective_scan
    from ..testing import rel_rms

    on_gpu = str(device).startswith("cuda")
    rows = []
    torch.manual_seed(0)

    def inputs(bsz, dim, N, L):
        g = lambda *s: torch.randn(*s, device=device)
        return (g(bsz, dim, L), g(bsz, dim, L) - 2.0, -torch.rand(dim, N, device=device) * 4 - 0.1,
                g(bsz, N, L), g(bsz, N, L), g(dim), g(bsz, dim, L), g(dim))

    lengths = ([1, 127, 2048] if quick else [1, 127, 1000, 2048, 16384]) if on_gpu else [1, 37]
    for L in lengths:
        bsz, dim = (2, 64) if on_gpu else (1, 4)
        u, dl, A, B, C, D, z, bias = inputs(bsz, dim, 16, L)
        ref = selective_scan(u.double(), dl.double(), A.double(), B.double(), C.double(), D.double(), z.double(),
                             bias.double(), True, backend="chunked" if L > 256 else "sequential")
        out = selective_scan(u, dl, A, B, C, D, z, bias, True, backend="triton")
        err = rel_rms(ref, out)
        close = torch.allclose(out.double(), ref, rtol=6e-4, atol=2e-3)
        rows.append(dict(kernel="selective_scan", check="forward vs fp64 reference", shape=f"({bsz},{dim},16,{L})",
                         rel_rms=err, allclose_mamba_tol=bool(close), ok=bool(close and err < 1e-3)))

    def timed(fn, reps):
        return time_fn(fn, repeats=reps, warmup=1, device=device)     # CUDA events on a GPU, after a warm-up call

    big = torch.empty((256 if on_gpu else 4) * 2 ** 20 // 4, device=device)
    copy_ms = timed(lambda: big.clone(), 10 if on_gpu else 3)
    copy_bw = 2 * big.numel() * 4 / (copy_ms * 1e-3)
    del big
    shapes = ([(8, 1024, 16, 2048)] if quick else [(8, 1024, 16, 2048), (8, 1024, 16, 8192), (2, 2048, 16, 16384)]) \
        if on_gpu else [(1, 4, 4, 64)]
    for bsz, dim, N, L in shapes:
        u, dl, A, B, C, D, z, bias = inputs(bsz, dim, N, L)
        kern_ms = timed(lambda: selective_scan(u, dl, A, B, C, D, z, bias, True, backend="triton"), 10 if on_gpu else 1)
        loop_ms = timed(lambda: selective_scan(u, dl, A, B, C, D, z, bias, True, backend="sequential"), 2 if on_gpu else 1)
        minimal_bytes = (4 * bsz * dim * L + 2 * bsz * N * L) * u.element_size()   # u, Δ, z, y + B, C
        bw = minimal_bytes / (kern_ms * 1e-3)
        meets = loop_ms / kern_ms >= 20 and bw / copy_bw >= 0.5
        rows.append(dict(kernel="selective_scan", check="speed vs PyTorch loop (targets: ≥20×, ≥50% copy bandwidth)",
                         shape=f"({bsz},{dim},{N},{L})", triton_ms=kern_ms, torch_loop_ms=loop_ms,
                         speedup=loop_ms / kern_ms, effective_GBps=bw / 1e9, copy_GBps=copy_bw / 1e9,
                         bandwidth_fraction=bw / copy_bw, meets_targets=bool(meets),
                         ok=True if not on_gpu else bool(meets)))
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in gpu_check("cuda", quick=False):
        print(r)
