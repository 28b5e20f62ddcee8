"""The Triton WKV kernel ≡ the loop (fp64 and fp32, keys near 100, streaming, the out-of-range flag),
gradients through it, run through the Triton interpreter on CPU (tests/conftest.py sets TRITON_INTERPRET=1)."""
import warnings

import pytest
import torch

pytest.importorskip("triton")

from postlib.kernels.wkv import block_t_for, launch  # noqa: E402
from postlib.recurrent.rwkv import rwkv4_decay_init  # noqa: E402
from postlib.recurrent.wkv import WKVState, init_wkv_state, wkv, wkv_definition  # noqa: E402
from postlib.testing import assert_rel_rms  # noqa: E402

F64 = torch.float64
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(B=2, L=13, C=40, dtype=F64, key_offset=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(C, generator=g, dtype=dtype) * 2 + 0.01
    u = torch.randn(C, generator=g, dtype=dtype)
    k = torch.randn(B, L, C, generator=g, dtype=dtype) * 2 + key_offset
    v = torch.randn(B, L, C, generator=g, dtype=dtype)
    return [x.to(DEVICE) for x in (w, u, k, v)]


@pytest.mark.parametrize("L", [1, 67, 4096])
def test_triton_equals_the_loop_fp64(L):
    w, u, k, v = _inputs(B=1 if L == 4096 else 2, L=L, C=16 if L == 4096 else 40)
    ref, ref_state = wkv(w, u, k, v, backend="recurrent", return_state=True)
    out, state = wkv(w, u, k, v, backend="triton", return_state=True)
    assert_rel_rms(ref, out, 1e-12, "triton output")
    for name, a, b in zip(WKVState._fields, state, ref_state):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


def test_triton_fp32_with_keys_near_100():
    w, u, k, v = _inputs(L=100, C=16, dtype=torch.float32, key_offset=100.0)
    w = torch.exp(rwkv4_decay_init(16)).to(DEVICE)                  # the paper's decays, up to e^3
    ref = wkv_definition(w.double(), u.double(), k.double(), v.double())
    out = wkv(w, u, k, v, backend="triton")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert_rel_rms(ref, out, 1e-5, "triton fp32, keys ~100")


def test_streaming_through_the_kernel():
    w, u, k, v = _inputs(L=37, C=8)
    full = wkv(w, u, k, v, backend="recurrent")
    a, state = wkv(w, u, k[:, :20], v[:, :20], backend="triton", return_state=True)
    b = wkv(w, u, k[:, 20:], v[:, 20:], backend="triton", state=state)
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=1e-11, atol=1e-12)


def test_rows_out_of_fp64_range_raise_the_flag_and_fall_back():
    w, u, k, v = _inputs(B=1, L=40, C=8, dtype=torch.float32)
    k = k * 400                                                     # keys spread over ±2000: beyond e^{±708}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)             # the interpreter's 0/0 in flagged rows
        _, _, flag = launch(w, u, k, v, init_wkv_state(1, 8, device=DEVICE))
        assert int(flag.item()) > 0
        out = wkv(w, u, k, v, backend="triton")
    ref = wkv(w.double(), u.double(), k.double(), v.double(), backend="recurrent")
    assert_rel_rms(ref, out, 1e-5, "fallback")


def test_chunk_length_follows_the_decay():
    assert block_t_for(0.5) == 64 and block_t_for(20.0) == 8 and block_t_for(1e4) == 1


def test_gradcheck_fp64():
    w, u, k, v = _inputs(B=1, L=5, C=3)
    args = tuple(t.clone().requires_grad_(True) for t in (w, u, k, v))

    def fn(w, u, k, v):
        out, s = wkv(w, u, k, v, backend="triton", return_state=True)
        return out, s.num * torch.exp(s.shift)
    assert torch.autograd.gradcheck(fn, args)


def test_cpu_tensors_need_the_interpreter(monkeypatch):
    if DEVICE == "cuda":
        pytest.skip("CUDA machine: the kernel runs natively")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    w, u, k, v = _inputs(L=3, C=4)
    with pytest.raises(TypeError, match="Triton kernels need CUDA tensors"):
        wkv(w, u, k, v, backend="triton")
