"""Reformer: LSH attention equals its per-query loop; hashing statistics; reversible layers."""
import math

import pytest
import torch
from torch import nn

from postlib.attention import softmax_attention
from postlib.attention.reformer import (collision_probability, hyperplane_collision_theory, lsh_attention,
                                        lsh_attention_reference, lsh_hash, lsh_union_reference, topk_in_bucket)
from postlib.attention.reversible import ReversibleBlock, ReversibleSequence, saved_activation_bytes
from postlib.testing import rel_rms




def _qkv(L, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, 2, L, D, generator=g, dtype=torch.float64) for _ in range(2))


@pytest.mark.parametrize("L", [1, 7, 13, 40])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_hashes", [1, 3])
@pytest.mark.parametrize("dedup", [True, False])
def test_equals_reference_loop(L, causal, n_hashes, dedup):
    qk, v = _qkv(L)
    out, buckets = lsh_attention(qk, v, n_buckets=4, n_hashes=n_hashes, chunk_size=4, causal=causal,
                                 return_buckets=True, dedup=dedup)
    ref = lsh_attention_reference(qk, v, buckets, n_buckets=4, chunk_size=4, causal=causal, dedup=dedup)
    assert rel_rms(ref, out) < 1e-12


@pytest.mark.parametrize("L, chunk", [(13, 4), (40, 8), (7, 8)])
@pytest.mark.parametrize("causal", [False, True])
def test_dedup_is_exactly_softmax_over_the_union_of_rounds(L, chunk, causal):
    """The paper's correction (scores − log N_ij) makes the combination of rounds exactly the softmax over the
    union of their key sets; without it, keys found by several rounds weigh more (a different, wrong answer)."""
    qk, v = _qkv(L, seed=L)
    out, buckets = lsh_attention(qk, v, 4, 4, chunk, causal=causal, return_buckets=True)
    union = lsh_union_reference(qk, v, buckets, 4, chunk, causal)
    assert rel_rms(union, out) < 1e-12
    if L > chunk:
        assert rel_rms(union, lsh_attention(qk, v, 4, 4, chunk, causal=causal, buckets=buckets, dedup=False)) > 1e-3


def test_one_chunk_covering_everything_is_shared_qk_softmax():
    """With a single chunk every token sees every other: exact shared-QK softmax (self excluded)."""
    qk, v = _qkv(16)
    out = lsh_attention(qk, v, n_buckets=2, n_hashes=1, chunk_size=16)
    k = torch.nn.functional.normalize(qk, dim=-1)
    scores = qk @ k.transpose(-1, -2) / math.sqrt(8)
    scores = scores.masked_fill(torch.eye(16, dtype=torch.bool), -5e4)
    assert rel_rms(torch.softmax(scores, -1) @ v, out) < 1e-12


def test_causal_mask_holds_within_chunks():
    qk, v = _qkv(24)
    out = lsh_attention(qk, v, 4, 2, 6, causal=True)
    v2 = v.clone()
    v2[:, :, 12:] += 1.0                             # changing later *values* never reaches earlier outputs
    out2 = lsh_attention(qk, v2, 4, 2, 6, causal=True)
    torch.testing.assert_close(out[:, :, :12], out2[:, :, :12])


def test_collision_probability_matches_theory_for_two_buckets():
    angles = torch.linspace(0, math.pi, 7, dtype=torch.float64)
    measured = collision_probability(angles, n_buckets=2, n_trials=4000)
    assert (measured - hyperplane_collision_theory(angles)).abs().max() < 0.04
    more = collision_probability(angles, n_buckets=16, n_trials=2000)
    assert (more[1:-1] < measured[1:-1]).all()      # more buckets → fewer collisions at the same angle


def test_more_rounds_find_more_neighbours():
    x = torch.randn(128, 16, dtype=torch.float64)
    assert topk_in_bucket(x, 8, 4) > topk_in_bucket(x, 8, 1)


def test_hash_is_scale_invariant_and_in_range():
    x = torch.randn(2, 10, 8, dtype=torch.float64)
    h = lsh_hash(x, 6, 3, seed=1)
    assert h.shape == (2, 3, 10) and h.min() >= 0 and h.max() < 6
    torch.testing.assert_close(h, lsh_hash(3.7 * x, 6, 3, seed=1))


def test_bad_inputs():
    qk, v = _qkv(8)
    with pytest.raises(ValueError, match="n_buckets must be even"):
        lsh_attention(qk, v, 5, 1, 4)
    with pytest.raises(ValueError, match="n_hashes must be >= 1"):
        lsh_attention(qk, v, 4, 0, 4)
    with pytest.raises(ValueError, match=r"buckets must have shape \(batch, heads, n_hashes, length\)"):
        lsh_attention(qk, v, 4, 2, 4, buckets=torch.zeros(1, 2, 1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="v must have shape"):
        lsh_attention(qk, v[:, :, :5], 4, 1, 4)


def test_lsh_is_an_approximation():
    qk, v = _qkv(64)
    k = torch.nn.functional.normalize(qk, dim=-1)
    full = softmax_attention(qk, k, v)
    assert rel_rms(full, lsh_attention(qk, v, 8, 1, 8)) > 1e-3


# ---------------------------------------------------------------------------- reversible layers
def _stack(depth, d=8):
    torch.manual_seed(depth)
    return ReversibleSequence([ReversibleBlock(nn.Sequential(nn.Linear(d, d), nn.Tanh()),
                                               nn.Sequential(nn.Linear(d, d), nn.GELU()))
                               for _ in range(depth)]).double()


def test_reversible_reconstructs_inputs_exactly():
    m = _stack(6)
    x = torch.randn(3, 7, 16, dtype=torch.float64)
    torch.testing.assert_close(m.reconstruct_input(m(x)), x, rtol=0, atol=1e-12)


def test_reversible_gradients_equal_backprop():
    m = _stack(4)
    x = torch.randn(3, 7, 16, dtype=torch.float64, requires_grad=True)
    m(x).square().sum().backward()
    g_rev = [x.grad.clone()] + [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    x.grad = None
    m.forward_standard(x).square().sum().backward()
    g_std = [x.grad] + [p.grad for p in m.parameters()]
    for a, b in zip(g_rev, g_std):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_reversible_memory_does_not_grow_with_depth():
    x = torch.randn(4, 64, 16, dtype=torch.float64, requires_grad=True)
    rev = [saved_activation_bytes(_stack(d), x) for d in (1, 4, 8)]
    std = [saved_activation_bytes(lambda z, m=_stack(d): m.forward_standard(z), x) for d in (1, 4, 8)]
    assert rev[0] == rev[1] == rev[2] == x.numel() * 8     # only the final output is kept
    assert std[2] > 7 * std[0]                              # ordinary backprop: linear in depth


def test_reversible_rejects_odd_width():
    with pytest.raises(ValueError, match="even last dimension"):
        _stack(1)(torch.randn(2, 3, 15, dtype=torch.float64))


def test_reversible_peak_memory_is_flat_in_depth():
    """Measured (allocator profiler) peak memory of forward + backward: flat for the reversible stack
    (only parameter-sized buffers grow), linear in depth for ordinary residual layers."""
    from postlib.bench import peak_memory
    x = torch.randn(8, 256, 128)

    def peaks(depth):
        torch.manual_seed(0)
        m = ReversibleSequence([ReversibleBlock(nn.Sequential(nn.Linear(64, 64), nn.GELU()),
                                                nn.Sequential(nn.Linear(64, 64), nn.GELU())) for _ in range(depth)])

        def run(fwd):
            xx = x.clone().requires_grad_(True)
            fwd(xx).sum().backward()
        return peak_memory(lambda: run(m)), peak_memory(lambda: run(m.forward_standard))

    (rev2, std2), (rev16, std16) = peaks(2), peaks(16)
    assert rev16 < 1.25 * rev2, (rev2, rev16)
    assert std16 > 4 * std2, (std2, std16)
