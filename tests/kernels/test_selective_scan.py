"""The Triton selective scan (interpreter on CPU) ≡ the sequential loop, across block boundaries and layouts."""
import pytest
import torch

from postlib.kernels.selective_scan import _forward_kernel, selective_scan_triton
from postlib.ssm.scan import selective_scan


def _inputs(b, d, N, L, dtype=torch.float64, fixed=False):
    g = torch.Generator().manual_seed(L)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    BC = (r(d, N), r(d, N)) if fixed else (r(b, N, L), r(b, N, L))
    return (r(b, d, L), r(b, d, L), -torch.rand(d, N, generator=g, dtype=dtype) - 0.05, *BC, r(d), r(b, d, L), r(d))


@pytest.mark.parametrize("L", [1, 7, 33, 100])
@pytest.mark.parametrize("block_l", [4, 16])
def test_state_is_carried_across_blocks(L, block_l):
    """Small BLOCK_L forces many blocks: the carried state must make them one scan."""
    u, dl, A, B, C, D, z, bias = _inputs(2, 3, 5, L)     # N = 5 is padded to 8 inside: masks matter
    y, last = _forward_kernel(u, dl, A, B, C, D, z, bias, True, block_l=block_l)
    ref, ref_last = selective_scan(u, dl, A, B, C, D, z, bias, True, backend="sequential", return_last_state=True)
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(last, ref_last, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fixed", [False, True])
def test_fp32_within_mamba_tolerance(fixed):
    u, dl, A, B, C, D, z, bias = _inputs(1, 17, 16, 129, dtype=torch.float32, fixed=fixed)
    y, _ = selective_scan_triton(u, dl, A, B, C, D, z, bias, True)
    ref = selective_scan(*(t.double() for t in (u, dl, A, B, C, D, z, bias)), True, backend="sequential")
    torch.testing.assert_close(y.double(), ref, rtol=6e-4, atol=2e-3)


def test_optional_inputs_absent():
    u, dl, A, B, C, *_ = _inputs(1, 2, 3, 9)
    y, _ = selective_scan_triton(u, dl, A, B, C)
    torch.testing.assert_close(y, selective_scan(u, dl, A, B, C, backend="sequential"))


def test_gradients_flow_through_the_chunked_twin():
    ins = [t.requires_grad_() for t in _inputs(1, 2, 2, 6)]
    assert torch.autograd.gradcheck(lambda *t: selective_scan_triton(*t, True)[0], ins, eps=1e-6, atol=1e-6)


def test_gpu_check_smoke_on_cpu():
    """The runner's --smoke path: tiny sizes through the interpreter; correctness rows must pass."""
    from postlib.kernels.selective_scan import gpu_check
    rows = gpu_check("cpu", quick=True)
    correctness = [r for r in rows if r["check"].startswith("forward")]
    speed = [r for r in rows if r["check"].startswith("speed")]
    assert len(correctness) == 2 and all(r["ok"] and r["rel_rms"] < 1e-5 for r in correctness)
    assert speed and all(r["copy_GBps"] > 0 and r["effective_GBps"] > 0 for r in speed)
