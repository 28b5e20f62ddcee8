"""The Triton chunked causal linear-attention kernel (interpreter on CPU) equals its PyTorch twins."""
import pytest
import torch

from postlib.attention.linear import apply_feature_map, causal_chunked, linear_attention, linear_attention_reference
from postlib.kernels import interpreter_enabled
from postlib.kernels.linear_attention import triton_causal_linear_attention
from postlib.testing import assert_rel_rms

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() or interpreter_enabled()),
                                reason="needs CUDA or TRITON_INTERPRET=1")
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _features(L, D=16, Dv=16, dtype=torch.float64, B=1, H=2):
    g = torch.Generator().manual_seed(L)
    q, k, v = (torch.randn(B, H, L, d, generator=g, dtype=dtype) for d in (D, D, Dv))
    return apply_feature_map(q).to(DEV), apply_feature_map(k).to(DEV), v.to(DEV), q, k, v


@pytest.mark.parametrize("L", [1, 7, 63, 100])
def test_kernel_equals_reference_fp64(L):
    pq, pk, v, q, k, v0 = _features(L)
    ref = linear_attention_reference(q, k, v0, causal=True)
    assert_rel_rms(ref, triton_causal_linear_attention(pq, pk, v).cpu(), 1e-12)


@pytest.mark.parametrize("D,Dv", [(8, 24), (20, 70)])     # head dims that are not powers of two, Dv > one block
def test_kernel_handles_padded_dims(D, Dv):
    pq, pk, v, *_ = _features(70, D, Dv)
    ref, _ = causal_chunked(pq.cpu(), pk.cpu(), v.cpu())
    assert_rel_rms(ref, triton_causal_linear_attention(pq, pk, v).cpu(), 1e-12)


def test_kernel_fp32_against_fp64():
    pq, pk, v, *_ = _features(100, dtype=torch.float32)
    ref, _ = causal_chunked(pq.double().cpu(), pk.double().cpu(), v.double().cpu())
    assert_rel_rms(ref, triton_causal_linear_attention(pq, pk, v).cpu(), 1e-5)


def test_backend_triton_through_public_api():
    pq, pk, v, q, k, v0 = _features(33)
    out = linear_attention(q.to(DEV), k.to(DEV), v0.to(DEV), causal=True, backend="triton")
    assert_rel_rms(linear_attention_reference(q, k, v0, causal=True), out.cpu(), 1e-12)


def test_gradcheck():
    pq, pk, v, *_ = _features(5, D=2, Dv=2, H=1)
    pq, pk, v = (t.detach().requires_grad_(True) for t in (pq, pk, v))
    assert torch.autograd.gradcheck(lambda a, b, c: triton_causal_linear_attention(a, b, c), (pq, pk, v))


def test_rejects_cpu_tensors_without_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    pq, pk, v, *_ = _features(4)
    if not pq.is_cuda:
        with pytest.raises(TypeError, match="Triton kernels need CUDA tensors"):
            triton_causal_linear_attention(pq, pk, v)
