"""Transformer-XL: the relative shift ≡ the direct (i, j) loop, the segment recurrence ≡ one masked pass,
no gradient through the memory, step ≡ forward, and the copy task's reach."""
import math

import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.recurrent.copy_task import delayed_copy, dependency_reach
from postlib.recurrent.transformer_xl import rel_shift, relative_scores, relative_scores_loop, sinusoid_embedding
from postlib.tasks import IGNORE


def _mixer(**config):
    torch.manual_seed(0)
    return build_mixer("transformer_xl", 16, n_heads=2, **config).double().eval()


@pytest.mark.parametrize("L,M", [(1, 0), (5, 0), (4, 4), (3, 9), (7, 2)])
def test_shift_trick_equals_the_direct_loop(L, M):
    g = torch.Generator().manual_seed(L * 10 + M)
    B, H, D, K = 2, 3, 4, L + M
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    q, k, u, v = r(B, H, L, D), r(B, H, K, D), r(H, D), r(H, D)
    r_by_distance = r(H, K, D)                                       # row d: W_k,R R_d
    ref = relative_scores_loop(q, k, r_by_distance, u, v)
    fast = relative_scores(q, k, r_by_distance.flip(1), u, v)        # the trick wants descending distances
    visible = torch.isfinite(ref)
    assert visible.sum() == B * H * sum(M + i + 1 for i in range(L))
    torch.testing.assert_close(fast[visible], ref[visible], rtol=1e-12, atol=1e-12)


def test_rel_shift_moves_each_row_into_place():
    L, K = 3, 5
    x = torch.arange(L * K, dtype=torch.float64).view(L, K)
    out = rel_shift(x)
    for i in range(L):
        for j in range(K - L + i + 1):
            assert out[i, j] == x[i, j + L - 1 - i]


def test_sinusoid_embedding_formula():
    R = sinusoid_embedding(torch.tensor([0, 3]), 6)
    w = torch.tensor([1.0, 10000 ** (-2 / 6), 10000 ** (-4 / 6)], dtype=torch.float64)
    torch.testing.assert_close(R[1], torch.cat([torch.sin(3 * w), torch.cos(3 * w)]))
    torch.testing.assert_close(R[0], torch.cat([torch.zeros(3), torch.ones(3)]).double())


def _window_reference(mixer, x):
    """Transformer-XL in one pass: position p sees keys from (its segment's start − M) to p, with relative
    positions p − j — the segment recurrence unrolled into a banded mask (values only: no stop-gradient here)."""
    B, L, _ = x.shape
    S, M = mixer.segment_length, mixer.memory_length
    q, k, v = mixer._project(x)
    r_by_distance = mixer._position_keys(L, x.dtype, x.device).flip(1)
    scores = relative_scores_loop(q, k, r_by_distance, mixer.u, mixer.v)
    p = torch.arange(L)[:, None]
    j = torch.arange(L)[None, :]
    scores = scores.masked_fill(j < (p // S) * S - M, float("-inf")) / math.sqrt(mixer.head_dim)
    out = torch.softmax(scores, -1) @ v
    return mixer.out(out.transpose(1, 2).reshape(B, L, mixer.d_model))


@pytest.mark.parametrize("S,M", [(4, 4), (4, 0), (3, 7), (5, 2), (32, 32)])
def test_segment_recurrence_equals_one_banded_pass(S, M):
    mixer = _mixer(segment_length=S, memory_length=M)
    x = torch.randn(2, 19, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x), _window_reference(mixer, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("S,M", [(4, 4), (4, 0), (3, 7), (5, 2)])
def test_step_equals_forward(S, M):
    mixer = _mixer(segment_length=S, memory_length=M)
    x = torch.randn(2, 17, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-10, atol=1e-12)


def test_memory_carries_values_but_no_gradient():
    mixer = _mixer(segment_length=4, memory_length=4)
    x = torch.randn(1, 8, 16, dtype=torch.float64, requires_grad=True)
    y = mixer(x)
    y[:, 4:].sum().backward()
    assert torch.equal(x.grad[:, :4], torch.zeros_like(x.grad[:, :4]))       # stop-gradient into segment 1
    assert x.grad[:, 4:].abs().sum() > 0
    x2 = x.detach().clone()
    x2[:, :4] += 1.0
    with torch.no_grad():
        assert not torch.allclose(mixer(x2)[:, 4:], y[:, 4:])               # ... but segment 1's values reach it


def test_without_memory_segments_are_independent():
    mixer = _mixer(segment_length=4, memory_length=0)
    x = torch.randn(1, 12, 16, dtype=torch.float64)
    x2 = x.clone()
    x2[:, :8] = torch.randn(1, 8, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x)[:, 8:], mixer(x2)[:, 8:])


def test_config_errors():
    with pytest.raises(ValueError, match="segment_length must be >= 1"):
        build_mixer("transformer_xl", 16, segment_length=0)
    with pytest.raises(ValueError, match="memory_length must be >= 0"):
        build_mixer("transformer_xl", 16, memory_length=-1)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        build_mixer("transformer_xl", 18, n_heads=4)
    mixer = _mixer()
    state = mixer.init_state(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="x_t has batch 3 but the state was made for batch 2"):
        mixer.step(torch.randn(3, 16, dtype=torch.float64), state)


# --- the copy task ----------------------------------------------------------------------------------------------
def test_delayed_copy_targets_are_the_past_inputs():
    x, y, vocab = delayed_copy(4, length=20, delay=6, vocab=9, seed=3)
    assert vocab == 9 and x.max() < 9
    assert (y[:, :6] == IGNORE).all()
    assert torch.equal(y[:, 6:], x[:, :-6])
    with pytest.raises(ValueError, match="delay must be < length"):
        delayed_copy(2, length=5, delay=5)


def test_dependency_reach_grows_with_memory_and_depth():
    S = 4
    assert dependency_reach(12, S, 0, 3).tolist() == [0, 1, 2, 3] * 3              # vanilla: the offset only
    one = dependency_reach(12, S, S, 1)
    assert one.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]                    # one layer: offset + M
    two = dependency_reach(16, S, S, 2)
    assert two[12:].tolist() == [8, 9, 10, 11]                                     # N layers: offset + N·M


def test_dependency_reach_matches_the_mixer_empirically():
    """Perturb input j and see which outputs of a 2-layer stack move: the farthest is the reach."""
    torch.manual_seed(0)
    S, M, L = 3, 3, 15
    layers = [build_mixer("transformer_xl", 16, n_heads=2, segment_length=S, memory_length=M).double()
              for _ in range(2)]
    x = torch.randn(1, L, 16, dtype=torch.float64, requires_grad=True)
    h = x
    for layer in layers:
        h = layer(h)
    reach = dependency_reach(L, S, M, 2)
    with torch.no_grad():
        base = layers[1](layers[0](x))
        for j in range(L):
            x2 = x.detach().clone()
            x2[:, j] += 1.0
            moved = (layers[1](layers[0](x2)) - base).abs().amax(-1)[0] > 1e-12
            for p in range(L):
                assert bool(moved[p]) == (j <= p and p - j <= reach[p]), (j, p)
