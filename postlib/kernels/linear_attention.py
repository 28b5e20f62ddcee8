"""Chunked causal linear attention as a Triton kernel.

PyTorch twin: ``postlib.attention.linear.causal_chunked`` (same algorithm, same
eps), itself equal to the loop ``linear_attention_reference``; the test is
``tests/kernels/test_linear_attention_triton.py``.

Linear attention is the decayed linear recurrence with no decay, normalised, so it
runs on that recurrence's one kernel (``postlib.kernels.retention``, with
``NORMALIZE``) rather than a second chunked loop. One program owns one
(batch, head) and one block of BV value columns. It walks the sequence in chunks
of BT tokens, keeping the running state S = Σ φ(k_j) v_jᵀ (BK × BV) and
z = Σ φ(k_j) in registers:

    intra  = tril(Q_c K_cᵀ)                       (BT × BT, exact inside the chunk)
    out_c  = (intra V_c + Q_c S) / (rowsum(intra) + Q_c z + eps)
    S     += K_cᵀ V_c,   z += colsum(K_c)

so HBM traffic is one read of Q, K, V and one write of O — no (L × L) matrix
and no stored prefix states. Matmuls take the input dtype (bf16 on the GPU,
tensor cores) and accumulate in fp32 (fp64 when the inputs are fp64, which the
interpreter tests use). The backward pass recomputes through the PyTorch twin
(autograd), so gradients are exact and ``gradcheck`` holds; only the forward is
a kernel.
"""
from __future__ import annotations

import torch

from . import check_triton_device


def _launch(pq, pk, v, eps: float, chunk_size: int = 64) -> torch.Tensor:
    B, H, L, DK = pq.shape
    if DK > 256:
        raise ValueError(f"the Triton kernel keeps the state in registers: feature_dim must be <= 256, got {DK}")
    from .retention import _launch as decayed_recurrence_kernel
    return decayed_recurrence_kernel(pq, pk, v, None, chunk_size, eps=eps)[0]


class _TritonCausalLinearAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pq, pk, v, eps):
        ctx.save_for_backward(pq, pk, v)
        ctx.eps = eps
        return _launch(pq, pk, v, eps)

    @staticmethod
    def backward(ctx, grad_out):
        # Recompute through the PyTorch twin: exact gradients, no extra kernel to trust.
        from ..attention.linear import causal_chunked
        pq, pk, v = (t.detach().requires_grad_(True) for t in ctx.saved_tensors)
        with torch.enable_grad():
            out, _ = causal_chunked(pq, pk, v, ctx.eps)
        grads = torch.autograd.grad(out, (pq, pk, v), grad_out, allow_unused=True)
        return (*grads, None)


def triton_causal_linear_attention(pq, pk, v, eps: float = 1e-6) -> torch.Tensor:
    """Causal linear attention on mapped features φ(Q), φ(K): (B, H, L, D_φ); v: (B, H, L, D_v).

    Equals ``postlib.attention.linear.causal_chunked`` (tests/kernels/test_linear_attention_triton.py).
    """
    from .._checks import CAUSAL_NONFINITE, check_finite, check_number, check_qkv
    check_qkv(pq, pk, v, "(batch, heads, length, feature_dim)")
    for t, name in ((pq, "pq"), (pk, "pk"), (v, "v")):
        check_finite(t, name, CAUSAL_NONFINITE)
    eps = check_number(eps, "eps", nonnegative=True)
    check_triton_device(pq, pk, v)
    return _TritonCausalLinearAttention.apply(pq, pk, v, eps)


# --------------------------------------------------------------------------- make gpu-check
def gpu_check(device: str = "cuda", quick: bool = False) -> list[dict]:
    """Correctness of the kernel against the torch prefix-sum form in fp64 (rel RMS; fp32 <= 1e-5,
    bf16 <= 1e-2), then timing at head_dim 64, bf16: Triton vs fla-core's ``chunk_linear_attn`` (if
    importable) at T = 8192 and vs SDPA causal (the softmax it replaces) at T = 1024 … 8192.

    On ``device="cpu"`` (``--smoke``: Triton interpreter) the same code runs at tiny sizes in fp32,
    without fla; its timings mean nothing.
    """
    from ..attention.linear import apply_feature_map, causal_prefix_sum
    from ..testing import rel_rms
    from ._timing import causal_timing_rows, load_fla
    smoke = not str(device).startswith("cuda")
    rows = []
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    checks = ((torch.float32, 1e-5),) if smoke else ((torch.float32, 1e-5), (torch.bfloat16, 1e-2))
    for dtype, tol in checks:
        for L in ((7, 33) if smoke else (63, 500, 1000)):
            D = 16 if smoke else 64
            q, k, v = (randn(2, 3, L, D) for _ in range(3))
            pq, pk = apply_feature_map(q), apply_feature_map(k)
            ref = causal_prefix_sum(pq.double(), pk.double(), v.double())
            out = triton_causal_linear_attention(pq.to(dtype), pk.to(dtype), v.to(dtype))
            err = rel_rms(ref, out)
            rows.append(dict(kernel="linear_attention", check="forward vs torch prefix-sum (fp64)", length=L,
                             dtype=str(dtype), rel_rms=err, ok=err <= tol))
    fla, note = load_fla("fla.ops.linear_attn", "chunk_linear_attn", smoke)

    def runs(q, k, v):
        pq, pk = apply_feature_map(q), apply_feature_map(k)
        qf, kf, vf = (t.transpose(1, 2).contiguous() for t in (pq, pk, v))   # fla wants [B, T, H, K]
        return (lambda: triton_causal_linear_attention(pq, pk, v),
                None if fla is None else (lambda: fla(qf, kf, vf, scale=1.0, normalize=True)))

    return rows + causal_timing_rows("linear_attention", "causal", runs, device, quick, note, fla_lengths=(8192,))
