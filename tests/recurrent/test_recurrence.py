"""One decayed linear recurrence: every form ≡ the loop, and linear attention, retention, SSD and an RWKV-6-style
gated recurrence are all instances of it (fp64)."""
import pytest
import torch

from postlib.attention.linear import apply_feature_map, causal_chunked, linear_attention
from postlib.recurrent.recurrence import (decayed_linear_recurrence, recurrence_chunked, recurrence_recurrent,
                                          recurrence_reference, recurrent_step)
from postlib.recurrent.retention import retention, retnet_gammas
from postlib.ssm.ssd import ssd_chunked
from postlib.testing import assert_rel_rms
from tests.conftest import AWKWARD_LENGTHS

B, H, DK, DV = 2, 3, 6, 5
KINDS = ("none", "head", "token", "channel")


def _inputs(L, kind, seed=0):
    g = torch.Generator().manual_seed(1000 * seed + L)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    q, k, v = r(B, H, L, DK), r(B, H, L, DK), r(B, H, L, DV)
    log_decay = {"none": None,
                 "head": torch.log(retnet_gammas(H, torch.float64)),
                 "token": -torch.rand(B, H, L, generator=g, dtype=torch.float64),
                 "channel": -torch.rand(B, H, L, DK, generator=g, dtype=torch.float64)}[kind]
    return q, k, v, log_decay


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("L", AWKWARD_LENGTHS)
@pytest.mark.parametrize("backend", ["recurrent", "chunked"])
def test_every_form_equals_the_loop(kind, L, backend):
    q, k, v, log_decay = _inputs(L, kind)
    ref, ref_state = recurrence_reference(q, k, v, log_decay)
    out, state = decayed_linear_recurrence(q, k, v, log_decay, backend=backend, chunk_size=16, return_state=True)
    assert_rel_rms(ref, out, 1e-12, f"{backend} output")
    assert_rel_rms(ref_state, state, 1e-12, f"{backend} final state")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk_size", [1, 5, 64, 200])
def test_chunk_size_does_not_change_the_result(kind, chunk_size):
    q, k, v, log_decay = _inputs(63, kind)
    ref, ref_state = recurrence_recurrent(q, k, v, log_decay)
    out, state = recurrence_chunked(q, k, v, log_decay, chunk_size)
    assert_rel_rms(ref, out, 1e-12)
    assert_rel_rms(ref_state, state, 1e-12)


@pytest.mark.parametrize("kind", ["none", "token", "channel"])
def test_streaming_with_a_carried_state_equals_one_pass(kind):
    q, k, v, log_decay = _inputs(41, kind)
    whole = recurrence_reference(q, k, v, log_decay)[0]
    cut = 17
    part = lambda t, a, b: None if t is None or t.dim() == 1 else t[:, :, a:b]
    first, state = decayed_linear_recurrence(q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], part(log_decay, 0, cut),
                                             return_state=True, chunk_size=8)
    ref_second, _ = recurrence_reference(q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], part(log_decay, cut, None),
                                         initial_state=state)
    second = decayed_linear_recurrence(q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], part(log_decay, cut, None),
                                       initial_state=state, chunk_size=8)
    assert_rel_rms(whole, torch.cat([first, second], dim=2), 1e-12)
    assert_rel_rms(ref_second, second, 1e-12)


def test_one_step_is_the_rnn_update():
    q, k, v, log_decay = _inputs(1, "channel")
    S = torch.randn(B, H, DK, DV, dtype=torch.float64)
    o, S1 = recurrent_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], S, log_decay[:, :, 0])
    expected = torch.exp(log_decay[:, :, 0])[..., None] * S + k[:, :, 0, :, None] * v[:, :, 0, None, :]
    torch.testing.assert_close(S1, expected)
    torch.testing.assert_close(o, torch.einsum("bhd,bhdv->bhv", q[:, :, 0], expected))


# --- one family: the same recurrence, four models --------------------------------------------------------------
def test_linear_attention_is_the_recurrence_with_no_decay():
    """a = 1: linear attention's numerator and denominator are the recurrence on v and on a column of ones."""
    q, k, v, _ = _inputs(29, "none")
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    num = decayed_linear_recurrence(pq, pk, v, backend="reference")
    den = decayed_linear_recurrence(pq, pk, torch.ones_like(v[..., :1]), backend="reference")
    ref = linear_attention(q, k, v, causal=True, backend="recurrent", eps=0.0)
    assert_rel_rms(ref, num / den, 1e-12)
    out, (S, z) = causal_chunked(pq, pk, v, eps=0.0, chunk_size=8)       # the chunked form runs on the shared loop
    assert_rel_rms(ref, out, 1e-12)
    torch.testing.assert_close(S, torch.einsum("bhsd,bhsv->bhdv", pk, v))
    torch.testing.assert_close(z, pk.sum(2))


def test_retention_is_the_recurrence_with_one_decay_per_head():
    q, k, v, _ = _inputs(37, "none")
    gamma = retnet_gammas(H, torch.float64)
    ref = recurrence_reference(q, k, v, torch.log(gamma))[0]
    assert_rel_rms(ref, retention(q, k, v, gamma, backend="parallel"), 1e-12)


@pytest.mark.parametrize("L,chunk", [(1, 4), (13, 5), (64, 16)])
def test_mamba2_ssd_is_the_recurrence_with_a_decay_per_token(L, chunk):
    """SSD: query C_t, key B_s (shared by the heads), value Δ_s u_s, decay exp(Δ_t A_h)."""
    g = torch.Generator().manual_seed(L)
    b, Hs, P, N = 2, 3, 4, 5
    u = torch.randn(b, Hs, P, L, generator=g, dtype=torch.float64)
    delta = torch.rand(b, Hs, L, generator=g, dtype=torch.float64)
    A = -torch.rand(Hs, generator=g, dtype=torch.float64) * 3 - 0.1
    Bm, Cm = (torch.randn(b, N, L, generator=g, dtype=torch.float64) for _ in range(2))
    q = Cm.transpose(1, 2)[:, None].expand(b, Hs, L, N)
    k = Bm.transpose(1, 2)[:, None].expand(b, Hs, L, N)
    v = (u * delta[:, :, None]).transpose(2, 3)
    ref = recurrence_reference(q, k, v, delta * A[None, :, None])[0].transpose(2, 3)
    assert_rel_rms(ref, ssd_chunked(u, delta, A, Bm, Cm, chunk_size=chunk), 1e-12)


def test_retention_is_ssd_with_a_constant_step():
    """γ = e^{ΔA}: one retention head is Mamba-2's SSD with Δ = 1 and A = log γ (query C = q, key B = k, value u = v)."""
    q, k, v, _ = _inputs(30, "none")
    gamma = torch.tensor([0.9], dtype=torch.float64)
    for h in range(H):
        ret = retention(q[:, h:h + 1], k[:, h:h + 1], v[:, h:h + 1], gamma, backend="parallel")
        ssd = ssd_chunked(v[:, h:h + 1].transpose(2, 3), torch.ones(B, 1, 30, dtype=torch.float64), torch.log(gamma),
                          k[:, h].transpose(1, 2), q[:, h].transpose(1, 2), chunk_size=8)
        assert_rel_rms(ret, ssd.transpose(2, 3), 1e-12)


def test_rwkv6_style_gated_recurrence_is_the_same_recurrence():
    """RWKV-6 reads the state *before* the current token's update: o_t = r_t · S_{t−1} + bonus. The shared
    recurrence with a_t = w_t gives q_s · S_s, so feed it the queries one step ahead (q_s = r_{s+1}): its output at
    s is r_{s+1} · S_s, RWKV-6's read at s + 1. Add the bonus r_t·(u ⊙ k_t) v_t — and one chunked loop serves
    RetNet, SSD and this gated (GLA / RWKV-6) form, with a data-dependent decay per key channel."""
    from postlib.recurrent.rwkv6 import rwkv6, rwkv6_reference   # rwkv6's chunked form is this shifted read
    q, k, v, log_w = _inputs(45, "channel", seed=1)
    u = torch.randn(H, DK, dtype=torch.float64)
    assert_rel_rms(rwkv6_reference(q, k, v, log_w, u)[0], rwkv6(q, k, v, log_w, u, backend="chunked", chunk_size=16),
                   1e-12)


# --- gradients, memory, errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "token", "channel"])
def test_gradcheck_chunked(kind):
    q, k, v, log_decay = _inputs(9, kind)
    q, k, v = (t[:1, :2, :, :3].clone().requires_grad_(True) for t in (q, k, v))
    args = [q, k, v]
    if log_decay is not None:
        log_decay = log_decay[:1, :2] if kind == "token" else log_decay[:1, :2, :, :3]
        args.append(log_decay.clone().requires_grad_(True))
    fn = lambda *a: recurrence_chunked(*a[:3], a[3] if len(a) > 3 else None, 4)[0]
    assert torch.autograd.gradcheck(fn, tuple(args))


def test_chunked_memory_is_linear_not_quadratic():
    from postlib.bench import peak_memory
    L, D = 4096, 16
    q, k, v = (torch.randn(1, 1, L, D) for _ in range(3))
    log_gamma = torch.log(retnet_gammas(1))
    peak = peak_memory(lambda: recurrence_chunked(q, k, v, log_gamma, 64))
    assert peak < L * L * 4 / 8, f"chunked form allocated {peak / 2**20:.1f} MiB; L×L would be {L * L * 4 / 2**20:.0f} MiB"


def test_errors_name_the_argument():
    q, k, v, log_decay = _inputs(8, "token")
    with pytest.raises(ValueError, match="log_decay must be <= 0"):
        decayed_linear_recurrence(q, k, v, -log_decay)
    with pytest.raises(ValueError, match=r"log_decay must have shape \(heads,\)"):
        decayed_linear_recurrence(q, k, v, log_decay[:, :, :5])
    with pytest.raises(ValueError, match="backend must be one of"):
        decayed_linear_recurrence(q, k, v, log_decay, backend="fast")
    with pytest.raises(ValueError, match="q and k must have the same length"):
        decayed_linear_recurrence(q, k[:, :, :4], v[:, :, :4])
    with pytest.raises(ValueError, match=r"initial_state must have shape \(batch, heads, d_k, d_v\)"):
        decayed_linear_recurrence(q, k, v, initial_state=torch.zeros(B, H, DK, DK, dtype=torch.float64))
    with pytest.raises(ValueError, match="backend='triton' supports scalar decays"):
        decayed_linear_recurrence(q, k, v, -torch.rand(B, H, 8, DK, dtype=torch.float64), backend="triton")
    bad = v.clone()
    bad[0, 0, 5, 0] = float("nan")
    with pytest.raises(ValueError, match=r"v must be finite, but v\[0, 0, 5, 0\] = nan"):
        decayed_linear_recurrence(q, k, bad)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        decayed_linear_recurrence(q, k, v, chunk_size=0)
