"""Linear attention: every form equals the loop over the paper's Eq. 2 (fp64), mixers step ≡ forward."""
import pytest
import torch

from postlib.attention.linear import (apply_feature_map, causal_chunked, causal_prefix_sum, causal_recurrent,
                                      linear_attention, linear_attention_reference, linear_attention_weights,
                                      state_trajectory)
from postlib.attention import softmax_attention
from postlib.testing import assert_rel_rms
from tests.conftest import AWKWARD_LENGTHS




def _qkv(L, D=8, Dv=5, B=2, H=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(L)
    return tuple(torch.randn(B, H, L, d, generator=g, dtype=dtype) for d in (D, D, Dv))


@pytest.mark.parametrize("L", AWKWARD_LENGTHS)
@pytest.mark.parametrize("feature_map", ["elu+1", "relu"])
def test_noncausal_equals_reference(L, feature_map):
    q, k, v = _qkv(L)
    ref = linear_attention_reference(q, k, v, causal=False, feature_map=feature_map)
    assert_rel_rms(ref, linear_attention(q, k, v, feature_map=feature_map), 1e-12)


@pytest.mark.parametrize("L", AWKWARD_LENGTHS)
@pytest.mark.parametrize("backend", ["torch", "chunked", "recurrent"])
def test_causal_forms_equal_reference(L, backend):
    q, k, v = _qkv(L)
    ref = linear_attention_reference(q, k, v, causal=True)
    out = linear_attention(q, k, v, causal=True, backend=backend, chunk_size=16)
    assert_rel_rms(ref, out, 1e-12, backend)


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 200])
def test_chunk_size_does_not_change_the_result(chunk_size):
    q, k, v = _qkv(63)
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    ref = causal_prefix_sum(pq, pk, v)
    out, (S, z) = causal_chunked(pq, pk, v, chunk_size=chunk_size)
    assert_rel_rms(ref, out, 1e-12)
    # the final carried state is Σ φ(k_j) v_jᵀ — the RNN state after the last token
    torch.testing.assert_close(S, torch.einsum("bhjd,bhjv->bhdv", pk, v))
    torch.testing.assert_close(z, pk.sum(2))


def test_recurrent_state_matches_trajectory_and_stays_constant_size():
    q, k, v = _qkv(13, B=1, H=1)
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    _, (S, _), states = causal_recurrent(pq, pk, v, return_states=True)
    traj = state_trajectory(k[0, 0], v[0, 0])
    assert all(s.shape == S.shape for s in states)
    torch.testing.assert_close(torch.stack([s[0, 0] for s in states]), traj)


def test_weights_rows_sum_to_one_and_reproduce_output():
    q, k, v = _qkv(17)
    for causal in (False, True):
        A = linear_attention_weights(q, k, causal=causal, eps=0.0)
        torch.testing.assert_close(A.sum(-1), torch.ones_like(A[..., 0]))
        assert_rel_rms(linear_attention(q, k, v, causal=causal, eps=0.0), A @ v, 1e-12)
        if causal:
            assert (A.triu(1) == 0).all()


def test_is_not_softmax():
    """Sanity check that the tests above can fail: elu+1 attention differs from softmax."""
    q, k, v = _qkv(32)
    ref = softmax_attention(q, k, v)
    out = linear_attention(q, k, v)
    assert (ref - out).abs().max() > 1e-2


def test_gradients_of_forms_agree():
    q, k, v = (t.requires_grad_(True) for t in _qkv(20))
    grads = []
    for backend in ("torch", "chunked", "recurrent"):
        out = linear_attention(q, k, v, causal=True, backend=backend, chunk_size=7)
        grads.append(torch.autograd.grad(out.square().sum(), (q, k, v)))
    for g in grads[1:]:
        for a, b in zip(grads[0], g):
            torch.testing.assert_close(a, b)


def test_bad_inputs_have_clear_messages():
    q, k, v = _qkv(8)
    with pytest.raises(ValueError, match="feature_map must be one of"):
        linear_attention(q, k, v, feature_map="softplus")
    with pytest.raises(ValueError, match="backend must be one of"):
        linear_attention(q, k, v, causal=True, backend="cuda")
    with pytest.raises(ValueError, match=r"q must have 4 dimensions .*\(batch, heads, length, head_dim\)"):
        linear_attention(q[0], k, v)
    with pytest.raises(ValueError, match="v must have the same length"):
        linear_attention(q, k, v[:, :, :3])
    with pytest.raises(TypeError, match="k has dtype"):
        linear_attention(q, k.float(), v)
    with pytest.raises(ValueError, match="same length"):
        linear_attention(q, k[:, :, :5], v[:, :, :5], causal=True)


def test_linear_mixer_is_an_rnn():
    import postlib
    torch.manual_seed(0)
    m = postlib.build_mixer("linear", 16, n_heads=2).double().eval()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    state = m.init_state(2)
    for t in range(9):
        _, state = m.step(x[:, t], state)
    S, z = state
    assert S.shape == (2, 2, 8, 8) and z.shape == (2, 2, 8)       # fixed size, independent of t
    with pytest.raises(ValueError, match="backend must be one of"):
        postlib.build_mixer("linear", 16, backend="nope")


def test_causal_reference_refuses_more_queries_than_keys_like_the_fast_forms():
    """Causal queries are aligned to the end of the keys: with L_q > L_k the first queries would have no key
    (a negative slice, silently garbage). Both the loop and the fast forms refuse it; L_q < L_k (a decoder
    reading a cache) stays legal for the loop and equals softmax-style end alignment."""
    q, k, v = _qkv(9)
    with pytest.raises(ValueError, match="at least as many keys as queries"):
        linear_attention_reference(q, k[:, :, :4], v[:, :, :4], causal=True)
    with pytest.raises(ValueError, match="same length"):
        linear_attention(q, k[:, :, :4], v[:, :, :4], causal=True)
    last = linear_attention_reference(q[:, :, -3:], k, v, causal=True)
    torch.testing.assert_close(last, linear_attention_reference(q, k, v, causal=True)[:, :, -3:])
