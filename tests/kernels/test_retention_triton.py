"""The Triton chunkwise retention / decayed-recurrence kernel (interpreter on CPU) equals its PyTorch twins."""
import pytest
import torch

from postlib.kernels import interpreter_enabled
from postlib.kernels.retention import gpu_check, triton_decayed_recurrence
from postlib.recurrent.recurrence import decayed_linear_recurrence, recurrence_chunked, recurrence_reference
from postlib.recurrent.retention import retention, retention_reference, retnet_gammas
from postlib.testing import assert_rel_rms

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() or interpreter_enabled()),
                                reason="needs CUDA or TRITON_INTERPRET=1")
DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _qkv(L, B=1, H=2, D=16, Dv=16, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed * 131 + L)
    q, k = (torch.randn(B, H, L, D, generator=g, dtype=dtype) * D ** -0.25 for _ in range(2))
    return q, k, torch.randn(B, H, L, Dv, generator=g, dtype=dtype)


@pytest.mark.parametrize("L", [1, 61, 4096])
def test_triton_retention_equals_the_loop_fp64(L):
    q, k, v = _qkv(L)
    gamma = retnet_gammas(2, torch.float64)
    ref = retention_reference(q, k, v, gamma)
    out = retention(q.to(DEV), k.to(DEV), v.to(DEV), gamma.to(DEV), backend="triton")
    assert_rel_rms(ref, out.cpu(), 1e-12)


@pytest.mark.parametrize("kind", ["none", "head", "token"])
@pytest.mark.parametrize("D,Dv,L", [(8, 24, 70), (20, 70, 33), (16, 5, 100)])   # padded dims, Dv over one block
def test_kernel_equals_twin_for_every_scalar_decay(kind, D, Dv, L):
    q, k, v = _qkv(L, B=2, D=D, Dv=Dv)
    log_decay = {"none": None, "head": torch.log(torch.tensor([0.9, 0.5], dtype=torch.float64)),
                 "token": -torch.rand(2, 2, L, dtype=torch.float64)}[kind]
    ref, ref_state = recurrence_reference(q, k, v, log_decay)
    dev = lambda t: None if t is None else t.to(DEV)
    out, state = decayed_linear_recurrence(dev(q), dev(k), dev(v), dev(log_decay), backend="triton", return_state=True)
    assert_rel_rms(ref, out.cpu(), 1e-12, "output")
    assert_rel_rms(ref_state, state.cpu(), 1e-12, "final state")


def test_fp32_matches_fp64_twin():
    q, k, v = _qkv(200, dtype=torch.float32)
    gamma = retnet_gammas(2)
    ref = recurrence_chunked(q.double(), k.double(), v.double(), torch.log(gamma.double()))[0]
    out, _ = triton_decayed_recurrence(q.to(DEV), k.to(DEV), v.to(DEV), torch.log(gamma).to(DEV))
    assert_rel_rms(ref, out.cpu(), 1e-5)


def test_gradcheck_through_the_recomputed_backward():
    # each numerical-Jacobian column is one interpreted kernel launch: small inputs, fast mode
    q, k, v = (t.to(DEV).requires_grad_(True) for t in _qkv(7, H=1, D=3, Dv=2))
    log_decay = (-torch.rand(1, 1, 7, dtype=torch.float64)).to(DEV).requires_grad_(True)
    fn = lambda q, k, v, g: triton_decayed_recurrence(q, k, v, g, chunk_size=16)
    assert torch.autograd.gradcheck(fn, (q, k, v, log_decay), fast_mode=True)


def test_gpu_check_smoke_rows_pass():
    rows = gpu_check("cpu", quick=True)
    checks = [r for r in rows if "rel_rms" in r]
    assert checks and all(r["ok"] for r in checks), checks
    timings = [r for r in rows if "triton_ms" in r]
    assert timings and all(r["triton_ms"] > 0 and r["sdpa_causal_ms"] > 0 for r in timings)
