"""RWKV-6: the chunked (gated-linear-attention) form ≡ the loop in fp64, streaming, RWKV-5 as the case of a
fixed decay, Mamba-2's SSD as the case of a scalar decay, the data-dependent decay's range, bad input named."""
import pytest
import torch

from postlib.exercises.mixing import _rwkv5_step
from postlib.recurrent.rwkv6 import finch_log_decay, rwkv6, rwkv6_past_weights, rwkv6_reference
from postlib.ssm import ssd_chunked
from postlib.testing import assert_rel_rms

F64 = dict(dtype=torch.float64)


def _inputs(B=2, H=3, L=29, K=4, V=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    r, k = (torch.randn(B, H, L, K, generator=g, **F64) for _ in range(2))
    v = torch.randn(B, H, L, V, generator=g, **F64)
    log_w = -torch.rand(B, H, L, K, generator=g, **F64) * 2 - 1e-3      # w_t in (0.13, 1)
    u = torch.randn(H, K, generator=g, **F64)
    return r, k, v, log_w, u


def test_the_loop_is_the_papers_sum():
    """o_t = r_t · (diag(u) k_tᵀ v_t + Σ_{i<t} diag(Π_{j=i+1}^{t−1} w_j) k_iᵀ v_i), summed directly."""
    r, k, v, log_w, u = _inputs(B=1, H=2, L=9)
    out, _ = rwkv6_reference(r, k, v, log_w, u)
    for t in range(9):
        wkv = u[None, :, :, None] * k[:, :, t, :, None] * v[:, :, t, None, :]
        for i in range(t):
            decay = torch.exp(log_w[:, :, i + 1:t].sum(2))                    # Π_{j=i+1}^{t−1} w_j
            wkv = wkv + (decay * k[:, :, i])[..., None] * v[:, :, i, None, :]
        torch.testing.assert_close(out[:, :, t], torch.einsum("bhd,bhdv->bhv", r[:, :, t], wkv), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("L,chunk", [(1, 64), (29, 8), (64, 16), (67, 64)])
def test_chunked_equals_the_loop_fp64(L, chunk):
    r, k, v, log_w, u = _inputs(L=L)
    ref, ref_state = rwkv6(r, k, v, log_w, u, backend="recurrent", return_state=True)
    out, state = rwkv6(r, k, v, log_w, u, backend="chunked", chunk_size=chunk, return_state=True)
    assert_rel_rms(ref, out, 1e-12, "chunked output")
    assert_rel_rms(ref_state, state, 1e-12, "chunked state")


@pytest.mark.parametrize("backend", ["recurrent", "chunked"])
def test_streaming_in_pieces_equals_one_pass(backend):
    r, k, v, log_w, u = _inputs(L=40)
    full = rwkv6(r, k, v, log_w, u, backend=backend)
    state, outs = None, []
    for a, b in ((0, 1), (1, 17), (17, 40)):
        out, state = rwkv6(r[:, :, a:b], k[:, :, a:b], v[:, :, a:b], log_w[:, :, a:b], u, backend=backend,
                           state=state, return_state=True, chunk_size=8)
        outs.append(out)
    assert_rel_rms(full, torch.cat(outs, 2), 1e-12, backend)


def test_a_fixed_decay_is_rwkv5():
    """With w_t = w for every token, RWKV-6 is RWKV-5: the exercise's reference step, token by token."""
    r, k, v, _, u = _inputs(L=13)
    w = torch.rand(3, 4, generator=torch.Generator().manual_seed(1), **F64) * 0.9 + 0.05
    log_w = torch.log(w)[None, :, None, :].expand_as(r).contiguous()
    S = torch.zeros(2, 3, 4, 5, **F64)
    outs = []
    for t in range(13):
        o_t, S = _rwkv5_step(r[:, :, t], k[:, :, t], v[:, :, t], w, u, S)
        outs.append(o_t)
    assert_rel_rms(torch.stack(outs, 2), rwkv6(r, k, v, log_w, u), 1e-12, "RWKV-5")


def test_a_scalar_decay_is_mamba2_ssd():
    """One decay per token and head, w_t = e^{Δ_t A}: the past term of RWKV-6 is SSD with C_t = r_{t+1},
    B_s = k_s and Δ_s u_s = v_s (one head: SSD's B and C are shared by its heads)."""
    r, k, v, _, u = _inputs(B=2, H=1, L=31)
    g = torch.Generator().manual_seed(2)
    delta = torch.rand(2, 1, 31, generator=g, **F64) + 0.1
    A = -torch.rand(1, generator=g, **F64) - 0.2
    log_w = (delta * A)[..., None].expand_as(r).contiguous()
    bonus = (r * u[None, :, None] * k).sum(-1, keepdim=True) * v
    past = rwkv6(r, k, v, log_w, u) - bonus                          # r_t · S_{t−1}
    ahead = torch.cat([r[:, 0, 1:], torch.zeros_like(r[:, 0, :1])], 1)       # C_t = r_{t+1}
    ssd = ssd_chunked((v / delta[..., None]).transpose(2, 3), delta, A, k[:, 0].transpose(1, 2),
                      ahead.transpose(1, 2), chunk_size=8).transpose(2, 3)    # y_t = r_{t+1} · S_t
    assert_rel_rms(past[:, :, 1:], ssd[:, :, :-1], 1e-12, "SSD")
    assert past[:, :, 0].abs().max() == 0                              # nothing before the first token


def test_gradcheck_chunked():
    r, k, v, log_w, u = (t.clone().requires_grad_(True) for t in _inputs(B=1, H=1, L=7, K=2, V=2))
    assert torch.autograd.gradcheck(lambda *a: rwkv6(*a, backend="chunked", chunk_size=3), (r, k, v, log_w, u))


def test_finch_decay_stays_in_range_for_any_input():
    g = torch.Generator().manual_seed(3)
    H, K, D, rank = 2, 3, 5, 2
    omega, A, B = torch.randn(H, K, generator=g), torch.randn(D, rank, generator=g), torch.randn(rank, H * K, generator=g)
    for scale in (1.0, 1e3, 1e30):
        log_w = finch_log_decay(torch.randn(2, 7, D, generator=g) * scale, omega, A, B)
        assert log_w.shape == (2, H, 7, K)
        assert torch.isfinite(log_w).all() and (log_w < 0).all()
    # the low-rank term moves the decay with the token
    x = torch.zeros(1, 2, D)
    x[0, 1] = 1.0
    changed = finch_log_decay(x, omega, A, B)
    assert not torch.allclose(changed[:, :, 0], changed[:, :, 1])
    assert torch.allclose(changed[:, :, 0], -torch.exp(omega)[None])       # x = 0: d_t = ω


def test_past_weights_are_the_decay_products():
    log_w = -torch.rand(11, generator=torch.Generator().manual_seed(4), **F64)
    W = rwkv6_past_weights(log_w)
    for t in range(11):
        for i in range(11):
            expected = float(torch.exp(log_w[i + 1:t].sum())) if i < t else 0.0
            assert abs(float(W[t, i]) - expected) < 1e-12, (t, i)


def test_bad_input_names_the_argument():
    r, k, v, log_w, u = _inputs(L=5)
    with pytest.raises(ValueError, match="log_w must be <= 0"):
        rwkv6(r, k, v, -log_w, u)
    with pytest.raises(ValueError, match="log_w must have the shape of r"):
        rwkv6(r, k, v, log_w[..., :2], u)
    with pytest.raises(ValueError, match=r"u must have shape \(heads, d_k\)"):
        rwkv6(r, k, v, log_w, u[:1])
    with pytest.raises(ValueError, match="state must have shape"):
        rwkv6(r, k, v, log_w, u, state=torch.zeros(2, 3, 4, 4, **F64))
    with pytest.raises(TypeError, match="log_w is torch.float32"):
        rwkv6(r, k, v, log_w.float(), u)
    with pytest.raises(ValueError, match="backend"):
        rwkv6(r, k, v, log_w, u, backend="triton")
    bad = v.clone()
    bad[0, 0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="v"):
        rwkv6(r, k, bad, log_w, u)
    with pytest.raises(ValueError, match=r"B must have shape \(rank=2"):
        finch_log_decay(torch.zeros(1, 3, 5), torch.zeros(2, 3), torch.zeros(5, 2), torch.zeros(2, 5))


def test_the_reset_demo_forgets_at_the_reset_tokens_only():
    from postlib.recurrent.rwkv6 import reset_demo_log_decay
    log_w = reset_demo_log_decay(32, [10, 22])
    w = torch.exp(log_w)
    assert w[10] < 1e-3 and w[22] < 1e-3
    others = [t for t in range(32) if t not in (10, 22)]
    torch.testing.assert_close(log_w[others], torch.full((30,), -0.05, **F64))
    torch.testing.assert_close(reset_demo_log_decay(32, [10], strength=0.0), torch.full((32,), -0.05, **F64))
    kept = rwkv6_past_weights(log_w)
    assert kept[11:, :10].max() < 1e-3 and kept[11, 9] == kept[11:, :10].max()
    for bad, match in (({"base_decay": 0.0}, "base_decay"), ({"strength": -1.0}, "strength")):
        with pytest.raises(ValueError, match=match):
            reset_demo_log_decay(8, [2], **bad)
    with pytest.raises(ValueError, match="resets"):
        reset_demo_log_decay(8, [8])
