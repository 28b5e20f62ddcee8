"""RWKV-4's WKV operator as a Triton kernel. PyTorch twin: ``postlib.recurrent.wkv._wkv_chunked``
(the same closed form per chunk), itself equal to the loop ``backend="recurrent"``.

Each program owns one sequence and BLOCK_C channels and walks the sequence in chunks of BLOCK_T
tokens, carrying the state (shift P, numerator A, denominator B — the official kernel's pp, aa, bb).
Inside a chunk (local index j), with z_j = k_j + j·w, m = max_j z_j and E_j = e^{z_j − m} ≤ 1:

    wkv_r = (α A + β Σ_{j<r} E_j v_j + γ E_r v_r) / (α B + β Σ_{j<r} E_j + γ E_r),
    (α, β, γ) = e^{(P, m + w, u + m) − R},  R = their maximum            (derived in _wkv_chunked)

so a chunk costs two exp() per token and two cumulative sums (``tl.cumsum``), fully parallel over
the chunk; the exclusive sums Σ_{j<r} come from a second, one-token-shifted load of the tile (a
shift, never a subtraction, so nothing cancels). The carry then absorbs the chunk:
(P, A, B) ← e^{P − T·w}(A, B) + e^{m − (T−1)w}(ΣE v, ΣE) under a common maximum.

Range: everything is computed in fp64 (exp range ±708). A row whose terms all sit far below the
chunk's reference would lose precision; that shows as a denominator below ``TINY`` (e^{−600}), which
sets a flag, and the wrapper then recomputes exactly with the PyTorch scan. ``BLOCK_T`` is chosen
from max(w) so that T·w stays ≤ 300 and this never happens for keys within ±150 of each other.

Main-memory traffic: k and v in (the shifted tile hits the cache), wkv out — O(batch·length·channels).
Gradients recompute through the PyTorch parallel form under autograd (exact; only the forward is a
kernel). ``tests/kernels/test_wkv_triton.py`` checks it against the loop under TRITON_INTERPRET=1.
"""
from __future__ import annotations

import torch

from . import check_triton_device, triton_available

NEG_INF = -1e38          # the official kernel's MIN_VALUE: finite, so NEG_INF − NEG_INF = 0
TINY = 1e-260            # ≈ e^{−598}: a denominator below it means terms may have left fp64's range
DRIFT_BUDGET = 300.0     # T·max(w) ≤ this; the rest of fp64's ~700 is left for the keys' spread
BLOCK_C, NUM_WARPS, MAX_BLOCK_T = 32, 2, 64

if triton_available():
    import triton
    import triton.language as tl

    @triton.jit
    def _add_scaled(p1, a1, b1, p2, a2, b2):
        # e^{p1}(a1, b1) + e^{p2}(a2, b2) as e^{p}(a, b) with p = max(p1, p2): one exp of −|p1 − p2|.
        first_bigger = p1 >= p2
        e = tl.exp(-tl.abs(p1 - p2))
        a = tl.where(first_bigger, a1 + e * a2, e * a1 + a2)
        b = tl.where(first_bigger, b1 + e * b2, e * b1 + b2)
        return tl.maximum(p1, p2), a, b

    @triton.jit
    def _wkv_fwd(w_ptr, u_ptr, k_ptr, v_ptr, y_ptr, sp_ptr, sa_ptr, sb_ptr, op_ptr, oa_ptr, ob_ptr, flag_ptr,
                 L, C, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
        f64 = tl.float64
        pid_c, pid_b = tl.program_id(0), tl.program_id(1)
        offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        mask_c = offs_c < C
        rows = tl.arange(0, BLOCK_T)
        w = tl.load(w_ptr + offs_c, mask=mask_c, other=1.0).to(f64)
        u = tl.load(u_ptr + offs_c, mask=mask_c, other=0.0).to(f64)
        state_off = pid_b * C + offs_c
        P = tl.load(sp_ptr + state_off, mask=mask_c, other=NEG_INF).to(f64)
        A = tl.load(sa_ptr + state_off, mask=mask_c, other=0.0).to(f64)
        B = tl.load(sb_ptr + state_off, mask=mask_c, other=0.0).to(f64)
        jw = rows.to(f64)[:, None] * w[None, :]                       # j·w   (BLOCK_T, BLOCK_C)
        tile = pid_b * L * C + rows[:, None] * C + offs_c[None, :]
        lost = tl.zeros((BLOCK_C,), dtype=tl.int32)              # rows out of range, per channel
        for t0 in range(0, L, BLOCK_T):
            t = t0 + rows
            cur = (t < L)[:, None] & mask_c[None, :]
            prev = (t >= t0 + 1)[:, None] & cur                       # token j − 1 inside this chunk
            k = tl.load(k_ptr + tile + t0 * C, mask=cur, other=NEG_INF).to(f64)
            v = tl.load(v_ptr + tile + t0 * C, mask=cur, other=0.0).to(f64)
            k_prev = tl.load(k_ptr + tile + (t0 - 1) * C, mask=prev, other=NEG_INF).to(f64)
            v_prev = tl.load(v_ptr + tile + (t0 - 1) * C, mask=prev, other=0.0).to(f64)
            z = k + jw
            m = tl.max(z, axis=0)                                     # (BLOCK_C,)
            E = tl.exp(z - m[None, :])
            E_prev = tl.exp(k_prev + jw - w[None, :] - m[None, :])    # E_{j−1}, 0 in row 0
            past_ev = tl.cumsum(E_prev * v_prev, axis=0)              # Σ_{j<r} E_j v_j
            past_e = tl.cumsum(E_prev, axis=0)
            R = tl.maximum(tl.maximum(P, m + w), u + m)
            alpha, beta, gamma = tl.exp(P - R), tl.exp(m + w - R), tl.exp(u + m - R)
            num = alpha[None, :] * A[None, :] + beta[None, :] * past_ev + gamma[None, :] * E * v
            den = alpha[None, :] * B[None, :] + beta[None, :] * past_e + gamma[None, :] * E
            lost += tl.sum(tl.where(cur & (den < TINY), 1, 0), axis=0)
            den = tl.where(cur, den, 1.0)                             # slots past the end: no 0/0
            tl.store(y_ptr + tile + t0 * C, (num / den).to(y_ptr.dtype.element_ty), mask=cur)
            # The chunk's sums as of its last slot (T − 1), then the carry decays over T tokens and adds them.
            P, A, B = _add_scaled(P - BLOCK_T * w, A, B, m - (BLOCK_T - 1) * w,
                                  tl.sum(E * v, axis=0), tl.sum(E, axis=0))
        pad = (BLOCK_T - L % BLOCK_T) % BLOCK_T                       # slots past the end: undo their decay
        tl.store(op_ptr + state_off, (P + pad * w).to(op_ptr.dtype.element_ty), mask=mask_c)
        tl.store(oa_ptr + state_off, A.to(oa_ptr.dtype.element_ty), mask=mask_c)
        tl.store(ob_ptr + state_off, B.to(ob_ptr.dtype.element_ty), mask=mask_c)
        tl.atomic_add(flag_ptr, tl.sum(lost, axis=0))


def block_t_for(w_max: float) -> int:
    """The longest power-of-two chunk (≤ 64) with T·max(w) ≤ DRIFT_BUDGET."""
    T = MAX_BLOCK_T
    while T > 1 and T * w_max > DRIFT_BUDGET:
        T //= 2
    return T


def launch(w, u, k, v, state, block_t: int | None = None, block_c: int = BLOCK_C, num_warps: int = NUM_WARPS):
    """Run the kernel (no autograd, no validation): returns (out, (num, den, shift), rows_out_of_range).
    ``w``, ``u`` (C,), ``k``, ``v`` (B, L, C) and the state's (B, C) tensors share one float dtype."""
    Bsz, L, C = k.shape
    if block_t is None:
        block_t = block_t_for(float(w.max()))
    k, v, w, u = k.contiguous(), v.contiguous(), w.contiguous(), u.contiguous()
    num, den, shift = (s.contiguous() for s in state)
    y = torch.empty_like(k)
    out_num, out_den, out_shift = torch.empty_like(num), torch.empty_like(den), torch.empty_like(shift)
    flag = torch.zeros(1, dtype=torch.int32, device=k.device)
    grid = (triton.cdiv(C, block_c), Bsz)
    _wkv_fwd[grid](w, u, k, v, y, shift, num, den, out_shift, out_num, out_den, flag, L, C,
                   BLOCK_T=block_t, BLOCK_C=block_c, num_warps=num_warps)
    return y, (out_num, out_den, out_shift), flag


class _WKVFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, u, k, v, num, den, shift):
        y, (n, d, s), flag = launch(w, u, k, v, (num, den, shift))
        if int(flag.item()):      # some row fell out of fp64's range: recompute exactly (the PyTorch scan)
            from ..recurrent.wkv import WKVState, _wkv_scan
            y, (n, d, s) = _wkv_scan(w, u, k, v, WKVState(num, den, shift))
        ctx.save_for_backward(w, u, k, v, num, den, shift)
        return y, n, d, s

    @staticmethod
    def backward(ctx, gy, gnum, gden, gshift):
        # Recompute through the PyTorch parallel form: exact gradients, no second kernel to trust.
        from ..recurrent.wkv import WKVState, _wkv_parallel
        inputs = [t.detach().requires_grad_(True) for t in ctx.saved_tensors]
        with torch.enable_grad():
            y, last = _wkv_parallel(*inputs[:4], WKVState(*inputs[4:]))
            outs, grads_out = [y], [gy]
            for o, g in zip(last, (gnum, gden, gshift)):
                if g is not None:
                    outs.append(o)
                    grads_out.append(g)
            grads = torch.autograd.grad(outs, inputs, grads_out, allow_unused=True)
        return tuple(grads)


def wkv_triton(w, u, k, v, state):
    """The kernel behind ``wkv(..., backend="triton")``: (out, WKVState). Inputs are validated there
    and arrive in the compute dtype (fp32, or fp64 under the interpreter tests)."""
    from ..recurrent.wkv import WKVState
    check_triton_device(k, v)
    y, n, d, s = _WKVFunction.apply(w, u, k, v, state.num, state.den, state.shift)
    return y, WKVState(n, d, s)


# --------------------------------------------------------------------------- make gpu-check
def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Correctness against the loop in fp64 (rel RMS, fp32 ≤ 1e-5; keys ≈ 100 included), then speed at
    (8, 8192, 1024) fp32: achieved bandwidth — the minimal bytes (k, v in; wkv out) over the kernel's
    time — against a measured ``copy_`` bandwidth (one read and one write per element). The target is
    ≥ 50% of copy bandwidth (``meets_target``; ``ok`` is correctness). A few tile shapes are timed so
    the fastest can become the default (``BLOCK_T``, ``BLOCK_C``, ``NUM_WARPS``).

    On ``device="cpu"`` (``--smoke``: the Triton interpreter) the sizes are tiny and timings mean nothing.
    """
    from ..bench import time_fn
    from ..recurrent.wkv import init_wkv_state, wkv
    from ..testing import rel_rms
    on_gpu = str(device).startswith("cuda")
    g = torch.Generator(device="cpu").manual_seed(0)
    rows = []

    def inputs(Bsz, L, C, key_offset=0.0):
        w = torch.exp(-5 + 8 * (torch.arange(C) / max(C - 1, 1)) ** 0.7)      # RWKV-4's initial decays
        u = torch.randn(C, generator=g)
        k = torch.randn(Bsz, L, C, generator=g) + key_offset
        v = torch.randn(Bsz, L, C, generator=g)
        return [x.to(device) for x in (w, u, k, v)]

    cases = ([(2, 1, 64), (2, 127, 64), (2, 1000, 256), (1, 4096, 64)] if on_gpu else [(1, 1, 8), (2, 37, 8)])
    for (Bsz, L, C) in cases:
        for offset in (0.0, 100.0):
            w, u, k, v = inputs(Bsz, L, C, offset)
            ref, ref_state = wkv(*(x.double() for x in (w, u, k, v)), backend="recurrent", return_state=True)
            out, state = wkv(w, u, k, v, backend="triton", return_state=True)
            err = rel_rms(ref, out)
            ok_state = all(torch.allclose(a.double(), b, rtol=1e-4, atol=1e-4) for a, b in zip(state, ref_state))
            rows.append(dict(kernel="wkv", check=f"forward vs loop (fp64), keys ~{offset:g}", length=L,
                             shape=f"({Bsz},{L},{C})", dtype="float32", rel_rms=err, state_ok=ok_state,
                             ok=bool(err <= 1e-5 and ok_state)))
    Bsz, L, C = (8, 8192, 1024) if on_gpu else (1, 64, 16)
    w, u, k, v = inputs(Bsz, L, C)
    state = init_wkv_state(Bsz, C, device=device)
    reps, warm = (20, 3) if on_gpu else (1, 1)
    src = torch.empty(Bsz * L * C * (4 if on_gpu else 1), device=device)
    dst = torch.empty_like(src)
    copy_ms = time_fn(lambda: dst.copy_(src), repeats=reps, warmup=warm, device=device)
    copy_bw = 2 * src.numel() * 4 / (copy_ms * 1e-3)
    del src, dst
    minimal_bytes = 3 * Bsz * L * C * 4                                  # k, v read; wkv written
    T = block_t_for(float(w.max()))
    configs = [(T, BLOCK_C, NUM_WARPS)]
    if on_gpu and not quick:
        configs += [(T, 16, 1), (T, 64, 4), (T, 128, 4), (T // 2, 32, 2), (T // 2, 64, 2)]
    with torch.no_grad():
        loop_ms = None
        if on_gpu:
            loop_ms = time_fn(lambda: wkv(w, u, k[:1, :1024], v[:1, :1024], backend="recurrent"), repeats=1,
                              warmup=1, device=device) * Bsz * L / 1024
        par_ms = time_fn(lambda: wkv(w, u, k, v, backend="parallel"), repeats=3 if on_gpu else 1, warmup=1,
                         device=device)
        for bt, bc, nw in configs:
            ms = time_fn(lambda: launch(w, u, k, v, state, bt, bc, nw), repeats=reps, warmup=warm, device=device)
            lost = int(launch(w, u, k, v, state, bt, bc, nw)[2].item())
            bw = minimal_bytes / (ms * 1e-3)
            rows.append(dict(kernel="wkv", check="speed (target: ≥ 50% of copy_ bandwidth)",
                             shape=f"({Bsz},{L},{C})", dtype="float32", block_t=bt, block_c=bc, num_warps=nw,
                             triton_ms=ms, torch_parallel_ms=par_ms, torch_loop_ms_estimated=loop_ms,
                             effective_GBps=bw / 1e9, copy_GBps=copy_bw / 1e9, bandwidth_fraction=bw / copy_bw,
                             rows_out_of_range=lost, meets_target=bool(on_gpu and bw / copy_bw >= 0.5)))
    return rows
