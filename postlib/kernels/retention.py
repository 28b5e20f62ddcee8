"""Chunkwise retention — the decayed linear recurrence with a scalar decay — as a Triton kernel.

PyTorch twin: ``postlib.recurrent.recurrence.recurrence_chunked`` (same chunking, same log-space decays),
itself equal to the loop ``recurrence_reference``; retention (``postlib.recurrent.retention``, one γ per
head) is the case log a_t = log γ_h. Tests: ``tests/kernels/test_retention_triton.py``.

One program owns one (batch, head) and one block of BV value columns. It walks the sequence in chunks of
BT tokens, keeping the state S (BK × BV) in registers. With g_t the cumulative log decay from the chunk start
(``tl.cumsum``; exp(g_t) ≤ 1):

    intra  = (Q_c K_cᵀ) ⊙ exp(g_t − g_s) [s ≤ t]           (BT × BT, exact inside the chunk)
    O_c    = intra V_c + exp(g_t) ⊙ (Q_c S)
    S      ← exp(g_BT) S + (K_c ⊙ exp(g_BT − g_s))ᵀ V_c

so HBM traffic is one read of Q, K, V (and of the decays), one write of O and of the final state — no L × L
matrix, no stored per-chunk states. With ``NORMALIZE`` it also carries z = Σ k (decayed the same way) and divides by
q·z + eps: causal linear attention runs on this kernel too (``postlib.kernels.linear_attention``). Matmuls take the input dtype (bf16 on the GPU: tensor cores) and
accumulate in fp32 (fp64 when the inputs are fp64, which the interpreter tests use); fp32 products use IEEE
precision, not TF32. The backward pass recomputes through the PyTorch twin under autograd (exact gradients,
so ``gradcheck`` holds; only the forward is a kernel — training on the GPU pays the twin's speed backwards).
"""
from __future__ import annotations

import torch

from . import check_triton_device, triton_available

if triton_available():
    import triton
    import triton.language as tl

    @triton.jit
    def _decayed_recurrence_fwd(Q, K, V, G, O, SF, L, DK, DV, eps,
                                BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                                HAS_DECAY: tl.constexpr, NORMALIZE: tl.constexpr, ACC: tl.constexpr):
        i_v, i_bh = tl.program_id(0), tl.program_id(1)
        base_qk = i_bh * L * DK
        base_v = i_bh * L * DV
        offs_t = tl.arange(0, BT)
        offs_k = tl.arange(0, BK)
        offs_v = i_v * BV + tl.arange(0, BV)
        mask_k = offs_k < DK
        mask_v = offs_v < DV
        S = tl.zeros((BK, BV), dtype=ACC)
        z = tl.zeros((BK,), dtype=ACC)               # Σ k_s (decayed): the normaliser, when NORMALIZE
        causal = offs_t[:, None] >= offs_t[None, :]
        for start in range(0, L, BT):
            t = start + offs_t
            mask_t = t < L
            mqk = mask_t[:, None] & mask_k[None, :]
            mv = mask_t[:, None] & mask_v[None, :]
            q = tl.load(Q + base_qk + t[:, None] * DK + offs_k[None, :], mask=mqk, other=0.0)
            k = tl.load(K + base_qk + t[:, None] * DK + offs_k[None, :], mask=mqk, other=0.0)
            v = tl.load(V + base_v + t[:, None] * DV + offs_v[None, :], mask=mv, other=0.0)
            sim = tl.dot(q, tl.trans(k), out_dtype=ACC, input_precision="ieee")
            inter = tl.dot(q, S.to(q.dtype), out_dtype=ACC, input_precision="ieee")
            if HAS_DECAY:
                # Past the end the decay is 0 in log space (a = 1) and k = v = 0: the state is unchanged.
                step = tl.load(G + i_bh * L + t, mask=mask_t, other=0.0).to(ACC)
                g = tl.cumsum(step, axis=0)
                total = tl.sum(step, axis=0)
                # exp only where s <= t (there g_t - g_s <= 0); above the diagonal the argument could overflow.
                sim = tl.where(causal, sim * tl.exp(tl.where(causal, g[:, None] - g[None, :], 0.0)), 0.0)
                q_decay = tl.exp(g)
                k_to_end = k.to(ACC) * tl.exp(total - g)[:, None]
                keep = tl.exp(total)
            else:
                sim = tl.where(causal, sim, 0.0)
                q_decay = tl.full((BT,), 1.0, ACC)
                k_to_end = k.to(ACC)
                keep = 1.0
            out = tl.dot(sim.to(v.dtype), v, out_dtype=ACC, input_precision="ieee") + inter * q_decay[:, None]
            if NORMALIZE:
                den = tl.sum(sim, axis=1) + tl.sum(q.to(ACC) * z[None, :], axis=1) * q_decay
                out = out / (den[:, None] + eps)
                z = z * keep + tl.sum(k_to_end, axis=0)
            tl.store(O + base_v + t[:, None] * DV + offs_v[None, :], out.to(O.dtype.element_ty), mask=mv)
            S = S * keep + tl.dot(tl.trans(k_to_end.to(k.dtype)), v, out_dtype=ACC, input_precision="ieee")
        tl.store(SF + i_bh * DK * DV + offs_k[:, None] * DV + offs_v[None, :], S.to(SF.dtype.element_ty),
                 mask=mask_k[:, None] & mask_v[None, :])


def _next_pow2(n: int, minimum: int = 16) -> int:
    p = minimum
    while p < n:
        p *= 2
    return p


def _launch(q, k, v, g, chunk_size: int = 64, eps: float | None = None):
    """Run the kernel: (output, final state S). ``g``: per-token log decays broadcastable to (B, H, L), or None.
    With ``eps`` the output is normalised, o_t / (q_t · z_t + eps) with z_t the same recurrence on k alone — causal
    linear attention (``postlib.kernels.linear_attention`` calls this)."""
    B, H, L, DK = q.shape
    DV = v.shape[-1]
    if DK > 256:
        raise ValueError(f"the Triton kernel keeps the state in registers: d_k must be <= 256, got {DK}")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty(B, H, L, DV, device=v.device, dtype=v.dtype)
    acc_torch = torch.float64 if q.dtype == torch.float64 else torch.float32
    final = torch.empty(B, H, DK, DV, device=v.device, dtype=acc_torch)
    if g is not None:
        g = g.to(acc_torch).expand(B, H, L).contiguous()
    BK, BV = _next_pow2(DK), min(64, _next_pow2(DV))
    BT = _next_pow2(chunk_size)
    acc = tl.float64 if q.dtype == torch.float64 else tl.float32
    grid = (triton.cdiv(DV, BV), B * H)
    _decayed_recurrence_fwd[grid](q, k, v, g if g is not None else q, out, final, L, DK, DV,
                                  0.0 if eps is None else float(eps), BT=BT, BK=BK, BV=BV, HAS_DECAY=g is not None,
                                  NORMALIZE=eps is not None, ACC=acc)
    return out, final.to(v.dtype)


def _per_token_log_decay(log_decay, shape):
    """(heads,) or (batch, heads, length) → a view broadcastable to (batch, heads, length); None stays None."""
    if log_decay is None:
        return None
    B, H, L = shape
    if log_decay.dim() == 1:
        return log_decay[None, :, None].expand(B, H, L)
    return log_decay


class _TritonDecayedRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, log_decay, chunk_size):
        ctx.save_for_backward(q, k, v, log_decay)
        ctx.has_decay = log_decay is not None
        ctx.chunk_size = chunk_size
        g = _per_token_log_decay(log_decay, q.shape[:3])
        return _launch(q, k, v, g, chunk_size)

    @staticmethod
    def backward(ctx, grad_out, grad_final):
        # Recompute through the PyTorch twin: exact gradients, no second kernel to trust.
        from ..recurrent.recurrence import recurrence_chunked
        q, k, v, log_decay = ctx.saved_tensors
        leaves = [t.detach().requires_grad_(True) for t in (q, k, v)]
        decay = log_decay.detach().requires_grad_(True) if ctx.has_decay else None
        with torch.enable_grad():
            out, final = recurrence_chunked(*leaves, decay, ctx.chunk_size)
        inputs = leaves + ([decay] if decay is not None else [])
        grads = torch.autograd.grad((out, final), inputs, (grad_out, grad_final), allow_unused=True)
        grads = list(grads) + ([None] if decay is None else [])
        return grads[0], grads[1], grads[2], grads[3], None


def triton_decayed_recurrence(q, k, v, log_decay=None, chunk_size: int = 64):
    """S_t = a_t S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t with a scalar decay, on the GPU. Returns (o, final state).

    q, k: (B, H, L, d_k); v: (B, H, L, d_v); log_decay: None (a = 1), (H,) or (B, H, L), ≤ 0.
    Equals ``postlib.recurrent.recurrence.recurrence_chunked`` (tests/kernels/test_retention_triton.py).
    Arguments are validated by the public entry points (``decayed_linear_recurrence``, ``retention``).
    """
    check_triton_device(q, k, v)
    return _TritonDecayedRecurrence.apply(q, k, v, log_decay, chunk_size)


# --------------------------------------------------------------------------- make gpu-check
def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Correctness against the fp64 parallel form (QKᵀ ⊙ D)V (rel RMS; fp32 ≤ 1e-5, bf16 ≤ 1e-2), then timing at
    head_dim 64, bf16: Triton chunkwise retention vs fla-core's ``chunk_retention`` (if importable; target ≥ 0.5×
    its throughput) and vs causal SDPA (target: faster from T = 4096), T = 1024 … 8192.

    Both sides of the comparison with fla compute the same thing: fla's retention fixes γ_h = 1 − 2^(−5−h) (we
    pass the same γ_h) and scales q by d^(−1/2) unless told ``scale=1.0`` (we tell it). On ``device="cpu"``
    (``--smoke``: Triton interpreter) the same code runs at tiny sizes in fp32, without fla; its timings mean nothing.
    """
    from ..recurrent.retention import retention_parallel, retnet_gammas
    from ..testing import rel_rms
    from ._timing import causal_timing_rows, load_fla
    smoke = not str(device).startswith("cuda")
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape, dtype=torch.float32, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype)

    checks = ((torch.float32, 1e-5),) if smoke else ((torch.float32, 1e-5), (torch.bfloat16, 1e-2))
    for dtype, tol in checks:
        for L in ((7, 33) if smoke else (63, 500, 1000)):
            D, H = (16, 3) if smoke else (64, 4)
            q, k, v = (randn(2, H, L, D, scale=D ** -0.25) for _ in range(3))
            gamma = retnet_gammas(H).to(device)
            ref = retention_parallel(q.double(), k.double(), v.double(), gamma.double())
            out, _ = triton_decayed_recurrence(q.to(dtype), k.to(dtype), v.to(dtype), torch.log(gamma))
            err = rel_rms(ref, out)
            rows.append(dict(kernel="retention", check="forward vs parallel (QKᵀ⊙D)V in fp64", length=L,
                             dtype=str(dtype), rel_rms=err, ok=err <= tol))
    fla, note = load_fla("fla.ops.retention", "chunk_retention", smoke)

    def runs(q, k, v):
        log_gamma = torch.log(retnet_gammas(q.shape[1])).to(q.device)
        # fla wants [B, T, H, K]; scale=1 so that it computes the same raw retention sums.
        qf, kf, vf = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        return (lambda: triton_decayed_recurrence(q, k, v, log_gamma),
                None if fla is None else (lambda: fla(qf, kf, vf, scale=1.0)))

    return rows + causal_timing_rows("retention", "chunkwise retention", runs, device, quick, note)
