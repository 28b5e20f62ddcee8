"""wkv: every form ≡ the definition, in fp64, at awkward lengths; fp32 with keys near 100; streaming;
gradients; the chunk plan's fallback; bad input named. The Triton kernel: tests/kernels/test_wkv_triton.py."""
import pytest
import torch

from postlib.recurrent.wkv import (EXP_RANGE, WKVState, _wkv_chunked, _wkv_scan, chunk_plan, init_wkv_state, wkv,
                                   wkv_definition, wkv_weights)
from postlib.recurrent.rwkv import rwkv4_decay_init
from postlib.testing import assert_rel_rms

F64 = torch.float64


def _inputs(B=2, L=13, C=6, dtype=F64, key_scale=3.0, key_offset=0.0, seed=0, paper_decays=False):
    g = torch.Generator().manual_seed(seed)
    w = torch.exp(rwkv4_decay_init(C)).to(dtype) if paper_decays else torch.rand(C, generator=g, dtype=dtype) * 3 + 0.01
    u = torch.randn(C, generator=g, dtype=dtype)
    k = torch.randn(B, L, C, generator=g, dtype=dtype) * key_scale + key_offset
    v = torch.randn(B, L, C, generator=g, dtype=dtype)
    return w, u, k, v


def test_the_loop_is_the_equation():
    """Two tokens by hand: wkv_1 = (e^{k0} v0 + e^{u+k1} v1) / (e^{k0} + e^{u+k1}); decay enters from t = 2."""
    w, u, k, v = _inputs(B=1, L=3, C=1)
    out = wkv(w, u, k, v, backend="recurrent")[0, :, 0]
    e = torch.exp
    w, u = w[0], u[0]
    k0, k1, k2 = k[0, :, 0]
    v0, v1, v2 = v[0, :, 0]
    expect = torch.stack([v0, (e(k0) * v0 + e(u + k1) * v1) / (e(k0) + e(u + k1)),
                          (e(-w + k0) * v0 + e(k1) * v1 + e(u + k2) * v2) / (e(-w + k0) + e(k1) + e(u + k2))])
    torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L", [1, 2, 7, 13, 64, 67, 100])
def test_loop_equals_definition_fp64(L):
    w, u, k, v = _inputs(L=L)
    torch.testing.assert_close(wkv(w, u, k, v, backend="recurrent"), wkv_definition(w, u, k, v), rtol=1e-10, atol=1e-12)


def test_weights_are_a_causal_softmax():
    w, u, k, v = _inputs(B=1, L=9, C=3)
    A = wkv_weights(w, u, k)
    assert A.shape == (1, 3, 9, 9)
    torch.testing.assert_close(A.sum(-1), torch.ones(1, 3, 9, dtype=F64))
    assert (A.triu(1) == 0).all()
    # Older tokens fade at rate w: with equal keys, A[t, i] / A[t, i+1] = e^{-w} below the diagonal.
    flat = wkv_weights(w, u, torch.zeros_like(k))
    ratio = flat[0, :, 8, 0:6] / flat[0, :, 8, 1:7]
    torch.testing.assert_close(ratio, torch.exp(-w)[:, None].expand(3, 6))


@pytest.mark.parametrize("backend", ["parallel", "auto"])
@pytest.mark.parametrize("L", [1, 67, 4096])
def test_backends_equal_the_loop_fp64(backend, L):
    w, u, k, v = _inputs(B=1 if L == 4096 else 2, L=L, C=8)
    ref, ref_state = wkv(w, u, k, v, backend="recurrent", return_state=True)
    out, state = wkv(w, u, k, v, backend=backend, return_state=True)
    assert_rel_rms(ref, out, 1e-12, f"{backend} output")
    for name, a, b in zip(WKVState._fields, state, ref_state):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("L", [1, 5, 67, 300])
def test_scan_and_every_chunk_length_equal_the_loop(L):
    w, u, k, v = _inputs(L=L, C=5)
    state = init_wkv_state(2, 5, dtype=F64)
    ref, ref_state = wkv(w, u, k, v, backend="recurrent", return_state=True)
    forms = {"scan": _wkv_scan(w, u, k, v, state)}
    for T in (1, 3, 16, 64):
        forms[f"chunk {T}"] = _wkv_chunked(w, u, k, v, state, T, F64)
    for name, (out, last) in forms.items():
        assert_rel_rms(ref, out, 1e-12, name)
        torch.testing.assert_close(last.num * torch.exp(last.shift), ref_state.num * torch.exp(ref_state.shift),
                                   rtol=1e-10, atol=1e-300, msg=name)


def test_chunk_plan_picks_fp32_fp64_or_the_scan():
    w, u, k, v = _inputs(C=8, dtype=torch.float32, paper_decays=True)            # w up to e^3
    T, dtype = chunk_plan(w, u, k, torch.float32)
    assert dtype == torch.float64 and T * float(w.max()) + float(k.max() - k.min()) <= EXP_RANGE[torch.float64]
    assert chunk_plan(w / 100, u, k, torch.float32) == (64, torch.float32)      # slow decays fit fp32 chunks
    assert chunk_plan(w, u, k * 300, torch.float32) is None                       # keys spread over ±1000: scan


@pytest.mark.parametrize("key_scale", [3.0, 300.0])
def test_parallel_fp32_keeps_fp32_precision(key_scale):
    """Whichever plan is taken (fp32 chunks, fp64 chunks, the scan), fp32 results stay within fp32's budget."""
    for decay in (1.0, 0.01):
        w, u, k, v = _inputs(B=2, L=300, C=16, dtype=torch.float32, key_scale=key_scale, paper_decays=True)
        w = w * decay
        ref = wkv_definition(w.double(), u.double(), k.double(), v.double())
        out = wkv(w, u, k, v, backend="parallel")
        assert out.dtype == torch.float32
        assert_rel_rms(ref, out, 1e-5, f"parallel, keys x{key_scale}, w x{decay}")


@pytest.mark.parametrize("backend", ["recurrent", "parallel"])
def test_keys_near_100_in_fp32(backend):
    """e^{100} overflows fp32 (max ≈ e^{88.7}); the running maximum keeps every exp() ≤ 1."""
    w, u, k, v = _inputs(B=2, L=200, C=16, dtype=torch.float32, key_scale=1.0, key_offset=100.0, paper_decays=True)
    assert torch.isinf(torch.exp(k)).any()
    ref = wkv_definition(w.double(), u.double(), k.double(), v.double())
    out = wkv(w, u, k, v, backend=backend)
    assert torch.isfinite(out).all()
    assert_rel_rms(ref, out, 2e-5, backend)


@pytest.mark.parametrize("grad", [False, True])
def test_parallel_in_many_blocks_equals_the_loop(monkeypatch, grad):
    """The parallel form streams through blocks of BLOCK_ELEMENTS entries, carrying the state between
    them, chunk after chunk inside each (``_carry``). With tiny blocks: many of both, a short last chunk,
    a carried-in state; with and without autograd (the in-place path and the out-of-place one)."""
    import postlib.recurrent.wkv as wkv_module
    monkeypatch.setattr(wkv_module, "BLOCK_ELEMENTS", 1 << 8)
    w, u, k, v = _inputs(B=2, L=301, C=5)
    w = w / 10                             # slow decays: the carried state still matters chunks later
    start = wkv(w, u, k[:, :7], v[:, :7], backend="recurrent", return_state=True)[1]
    ref, ref_state = wkv(w, u, k[:, 7:], v[:, 7:], backend="recurrent", state=start, return_state=True)
    assert wkv_module._block_count(2, 294, 5) > 5
    if grad:
        k = k.clone().requires_grad_(True)
    out, state = wkv(w, u, k[:, 7:], v[:, 7:], backend="parallel", state=start, return_state=True)
    assert_rel_rms(ref, out.detach(), 1e-12, "parallel, many blocks")
    for name in ("num", "den"):            # the sums e^{shift}·(num, den); any shift may represent them
        torch.testing.assert_close(getattr(state, name).detach() * torch.exp(state.shift.detach()),
                                   getattr(ref_state, name) * torch.exp(ref_state.shift), rtol=1e-10, atol=1e-300,
                                   msg=name)


@pytest.mark.parametrize("backend", ["recurrent", "parallel"])
def test_streaming_in_pieces_equals_one_pass(backend):
    w, u, k, v = _inputs(L=40, C=4)
    full = wkv(w, u, k, v, backend=backend)
    state, outs = None, []
    for a, b in ((0, 1), (1, 14), (14, 40)):
        out, state = wkv(w, u, k[:, a:b], v[:, a:b], backend=backend, state=state, return_state=True)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-12, atol=1e-12)


def test_low_precision_inputs_are_computed_in_fp32():
    w, u, k, v = _inputs(L=20, C=8, dtype=torch.float32)
    out = wkv(w, u, k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16
    ref = wkv(w, u, k.bfloat16().float(), v.bfloat16().float())
    assert_rel_rms(ref, out, 1e-2, "bf16")


def test_empty_batch_and_empty_chunk():
    w, u, k, v = _inputs(B=0, L=5, C=3)
    assert wkv(w, u, k, v).shape == (0, 5, 3)
    w, u, k, v = _inputs(B=2, L=4, C=3)
    _, state = wkv(w, u, k, v, return_state=True)
    out, same = wkv(w, u, k[:, :0], v[:, :0], state=state, return_state=True)
    assert out.shape == (2, 0, 3) and all(torch.equal(a, b) for a, b in zip(same, state))


@pytest.mark.parametrize("backend", ["recurrent", "parallel"])
def test_gradcheck_fp64(backend):
    w, u, k, v = _inputs(B=1, L=6, C=3)
    args = tuple(t.clone().requires_grad_(True) for t in (w, u, k, v))

    def fn(w, u, k, v):
        out, s = wkv(w, u, k, v, backend=backend, return_state=True)
        return out, s.num * torch.exp(s.shift), s.den * torch.exp(s.shift)
    assert torch.autograd.gradcheck(fn, args)


def test_gradcheck_through_the_scan_fallback():
    w, u, k, v = _inputs(B=1, L=5, C=2)
    args = tuple(t.clone().requires_grad_(True) for t in (w, u, k, v))
    state = init_wkv_state(1, 2, dtype=F64)
    assert torch.autograd.gradcheck(lambda w, u, k, v: _wkv_scan(w, u, k, v, state)[0], args)


def test_bad_input_names_the_argument():
    w, u, k, v = _inputs(B=1, L=4, C=3)
    with pytest.raises(ValueError, match=r"w must be finite and > 0.*time_decay"):
        wkv(torch.tensor([0.5, 0.0, 1.0], dtype=F64), u, k, v)
    with pytest.raises(ValueError, match=r"w must be finite and > 0"):
        wkv(-w, u, k, v)
    with pytest.raises(ValueError, match=r"w must have shape \(channels=3,\)"):
        wkv(w[:2], u, k, v)
    with pytest.raises(ValueError, match=r"u must have shape \(channels=3,\)"):
        wkv(w, torch.zeros(4, dtype=F64), k, v)
    with pytest.raises(ValueError, match=r"v must have the shape of k"):
        wkv(w, u, k, v[..., :2])
    with pytest.raises(ValueError, match=r"k must have 3 dimensions"):
        wkv(w, u, k[0], v[0])
    with pytest.raises(TypeError, match=r"v has dtype torch.float32 but k has torch.float64"):
        wkv(w, u, k, v.float())
    with pytest.raises(ValueError, match=r"k must be finite"):
        wkv(w, u, k.clone().index_fill_(1, torch.tensor([2]), float("nan")), v)
    with pytest.raises(ValueError, match=r"state.num must have shape \(batch, channels\) = \(1, 3\)"):
        wkv(w, u, k, v, state=init_wkv_state(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="backend must be one of"):
        wkv(w, u, k, v, backend="cuda")


def test_trace_follows_the_loop_and_the_weights():
    import numpy as np

    from postlib.recurrent.wkv_trace import wkv_trace
    w, u, k, v = _inputs(B=1, L=12, C=1)
    tr = wkv_trace(float(w[0]), float(u[0]), k[0, :, 0], v[0, :, 0])
    np.testing.assert_allclose(tr["output"], wkv(w, u, k, v, backend="recurrent")[0, :, 0].numpy(), rtol=1e-12)
    weights = np.exp(tr["log_weights"])
    np.testing.assert_allclose((weights * tr["v"]).sum(1) / weights.sum(1), tr["output"], rtol=1e-12)
    # After token t the denominator is Σ_{i≤t} e^{k_i − (t−i)w}: row t+1 of the weights without the bonus, ×e^{-w}.
    t = 6
    expect = np.log(np.exp(tr["k"][: t + 1] - (t - np.arange(t + 1)) * float(w[0])).sum())
    assert tr["log_den"][t] == pytest.approx(expect, rel=1e-12)
    with pytest.raises(ValueError, match="w must be > 0"):
        wkv_trace(0.0, 0.0, [1.0], [1.0])


@pytest.mark.parametrize("L", [1, 16, 29])
def test_inputs_are_never_modified(L):
    """The chunked form works in place on its own copies, never on the caller's tensors (regression: a
    (T, B, nc, C) view of a contiguous input once aliased it)."""
    w, u, k, v = _inputs(B=1, L=L, C=4)
    w, u, k, v = (x.float() for x in (w, u, k, v))
    before = [x.clone() for x in (w, u, k, v)]
    with torch.no_grad():
        wkv(w, u, k, v, backend="parallel")
    assert all(torch.equal(a, b) for a, b in zip(before, (w, u, k, v)))


@pytest.mark.parametrize("backend", ["auto", "parallel"])          # auto: the loop at 5 tokens
@pytest.mark.parametrize("L,key_scale", [(5, 1.0), (13, 1.0), (200, 1.0), (200, 1000.0)])
def test_memory_estimate_bounds_the_measured_peak(backend, L, key_scale):
    """Both paths of the parallel form (fp64 chunks; the scan, for keys spread over ±1000), with and
    without autograd, stay under ``wkv_memory_estimate`` and within 8x of it."""
    from postlib.bench import peak_memory
    from postlib.recurrent.wkv import wkv_memory_estimate
    w, u, k, v = (x.float() for x in _inputs(B=2, L=L, C=16, key_scale=key_scale, paper_decays=True))
    with torch.no_grad():
        peak = peak_memory(lambda: wkv(w, u, k, v, backend=backend))
    kg, vg = k.clone().requires_grad_(True), v.clone().requires_grad_(True)
    peak_grad = peak_memory(lambda: wkv(w, u, kg, vg, backend=backend).sum().backward())
    for measured, grad in ((peak, False), (peak_grad, True)):
        estimate = wkv_memory_estimate(2, L, 16, torch.float32, backend, grad=grad)
        assert measured <= estimate <= 8 * measured, (grad, measured, estimate)
