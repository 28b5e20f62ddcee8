"""The Triton block-sparse kernel equals masked dense attention, for every pattern kind.

Without CUDA the kernel runs under ``TRITON_INTERPRET=1`` (set by tests/conftest.py) on
CPU tensors, where it is slow: the cases below cover every kind, causal and not, a length
the tile does not divide, empty rows and tiles, full tiles (no mask) and partial ones.
"""
import pytest
import torch

from postlib.sparse import make_pattern, sparse_attention, sparse_attention_reference
from postlib.sparse.attention import blocked_attention
from postlib.kernels.block_sparse import block_sparse_attention_triton
from postlib.testing import assert_rel_rms

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

CASES = [("sliding", dict(window=21), False), ("sliding", dict(window=21), True),
         ("longformer", dict(window=8, global_tokens=[0, 40]), False),
         ("longformer", dict(window=8, global_tokens=[0, 1, 40]), True),
         ("bigbird", dict(block_size=8, num_random_blocks=2, num_global_blocks=1, seed=1), False),
         ("bigbird", dict(block_size=16, num_random_blocks=1, num_global_blocks=1), True),
         ("dilated", dict(segment_lengths=[8, 32, 64], dilations=[1, 4, 8], offset=1), False),
         ("dilated", dict(segment_lengths=[16, 48], dilations=[1, 3]), True)]


def qkv(length, d=16, dv=None, dtype=torch.float32, heads=1, seed=0):
    gen = torch.Generator().manual_seed(seed + length)
    make = lambda dim: torch.randn(1, heads, length, dim, generator=gen).to(DEVICE, dtype)  # noqa: E731
    return make(d), make(d), make(dv or d)


@pytest.mark.parametrize("kind,params,causal", CASES)
def test_kernel_equals_reference_fp32(kind, params, causal):
    q, k, v = qkv(100, dv=24)       # 100 = 6 tiles of 16 and a partial one; head_dim 24 is padded to 32
    ref = sparse_attention_reference(q.double(), k.double(), v.double(), kind, causal=causal, **params)
    out = sparse_attention(q, k, v, kind, causal=causal, backend="triton", tile=16, **params)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert_rel_rms(ref, out, 1e-5)


@pytest.mark.parametrize("length", [1, 13])
def test_short_sequences(length):
    q, k, v = qkv(length)
    ref = sparse_attention_reference(q.double(), k.double(), v.double(), "sliding", causal=True, window=4)
    assert_rel_rms(ref, sparse_attention(q, k, v, "sliding", causal=True, window=4, backend="triton", tile=16), 1e-5)


def test_empty_rows_and_lse():
    """Rows no pair selects see no key: zeros and lse = −inf, never NaN."""
    q, k, v = qkv(40)
    pattern = make_pattern("dilated", 40, segment_lengths=[8], dilations=[4], offset=1)
    out, lse = block_sparse_attention_triton(q, k, v, pattern, tile=16, return_lse=True)
    ref, ref_lse = blocked_attention(q.double(), k.double(), v.double(), pattern, tile=16, return_lse=True)
    assert torch.isfinite(out).all()
    assert_rel_rms(ref, out, 1e-5)
    empty = torch.isinf(ref_lse)
    assert empty.any() and torch.equal(torch.isinf(lse.cpu()), empty.cpu())
    assert_rel_rms(ref_lse[~empty], lse[~empty], 1e-5)


def test_fp16_within_half_precision_budget():
    q, k, v = qkv(100, dtype=torch.float16)
    ref = sparse_attention_reference(q.double(), k.double(), v.double(), "longformer", causal=True, window=10,
                                     global_tokens=[0])
    out = sparse_attention(q, k, v, "longformer", causal=True, window=10, global_tokens=[0], backend="triton",
                           tile=32)
    assert out.dtype == torch.float16
    assert_rel_rms(ref, out.double(), 5e-3)


def test_backward_recomputes_through_the_torch_form():
    q, k, v = (t.requires_grad_(True) for t in qkv(37, heads=2))
    pattern = make_pattern("longformer", 37, causal=True, window=6, global_tokens=[0])
    grad = torch.randn(1, 2, 37, 16, device=DEVICE)
    dq, dk, dv = torch.autograd.grad(block_sparse_attention_triton(q, k, v, pattern, tile=16), (q, k, v), grad)
    q2, k2, v2 = (t.detach().double().requires_grad_(True) for t in (q, k, v))
    ref = torch.autograd.grad(blocked_attention(q2, k2, v2, pattern, tile=16), (q2, k2, v2), grad.double())
    for a, b in zip((dq, dk, dv), ref):
        assert_rel_rms(b, a, 1e-5)


def test_kernel_rejects_bad_arguments():
    q, k, v = qkv(20)
    pattern = make_pattern("sliding", 20, window=4)
    with pytest.raises(ValueError, match="tile must be a power of two"):
        block_sparse_attention_triton(q, k, v, pattern, tile=24)
    with pytest.raises(TypeError, match="float64"):
        block_sparse_attention_triton(q.double(), k.double(), v.double(), pattern)
    with pytest.raises(ValueError, match="pattern is for length 20"):
        block_sparse_attention_triton(q[:, :, :10], k[:, :, :10], v[:, :, :10], pattern)


@pytest.mark.skipif(DEVICE == "cuda", reason="on a GPU, make gpu-check runs the full check")
def test_gpu_check_smoke():
    """``gpu_check`` runs end to end at tiny sizes under the interpreter (make gpu-check discovers it)."""
    from postlib.kernels.block_sparse import gpu_check
    from postlib.kernels.gpu_check import kernel_modules

    assert "postlib.kernels.block_sparse" in kernel_modules()
    rows = gpu_check("cpu")
    checks = [r for r in rows if "rel_rms" in r]
    assert checks and all(r["ok"] for r in checks)
    assert {r["causal"] for r in checks} == {False, True} and {r["dtype"] for r in checks} == {"float32", "float16"}
    assert any(r.get("speedup_vs_sdpa", 0) > 0 for r in rows)
