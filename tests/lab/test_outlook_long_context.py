"""postlib.outlook.long_context: streaming equals one shot, constant memory, top-k retrieval attention."""
import math

import pytest
import torch

from postlib.attention.linear import causal_prefix_sum
from postlib.outlook import long_context as lc
from postlib.testing import rel_rms


def _cat(segments):
    return [torch.cat([s[i] for s in segments], dim=2) for i in range(3)]


@pytest.mark.parametrize("length,segment", [(1, 1), (31, 7), (200, 97), (130, 64)])
def test_streaming_with_a_carried_state_equals_the_whole_sequence(length, segment):
    segs = list(lc.random_segments(length, segment, heads=2, dim=5, dtype=torch.float64))
    out, (S, z), n = lc.stream_linear_attention(segs, chunk_size=16)
    assert n == length and out.shape == (1, 2, length, 5)
    assert rel_rms(causal_prefix_sum(*_cat(segs)), out) < 1e-12
    whole = list(lc.random_segments(length, length, heads=2, dim=5, dtype=torch.float64))
    assert torch.equal(_cat(whole)[0], _cat(segs)[0])            # the same sequence whatever the segment
    assert torch.allclose(S, torch.einsum("bhld,bhlv->bhdv", _cat(segs)[1], _cat(segs)[2]))


def test_independent_chunks_are_a_different_function():
    segs = list(lc.random_segments(60, 20, heads=1, dim=4, dtype=torch.float64))
    carried, _, _ = lc.stream_linear_attention(segs)
    reset, _, _ = lc.stream_linear_attention(segs, carry=False)
    assert torch.allclose(carried[:, :, :20], reset[:, :, :20])   # the first segment sees no past either way
    assert rel_rms(carried, reset) > 0.05


def test_streaming_memory_does_not_grow_with_length():
    short, long = lc.streaming_peak_bytes(512, 128, heads=1, dim=8), lc.streaming_peak_bytes(4096, 128, heads=1, dim=8)
    assert long <= 1.1 * short
    assert lc.one_shot_peak_bytes(4096, heads=1, dim=8) > 4 * lc.one_shot_peak_bytes(512, heads=1, dim=8)
    assert lc.kv_cache_bytes(10, heads=2, dim=3) == 2 * 10 * 2 * 3 * 4
    assert lc.linear_state_bytes(heads=2, dim=3) == 2 * 12 * 4


def test_streaming_bad_input():
    with pytest.raises(ValueError, match="at least one segment"):
        lc.stream_linear_attention([])
    with pytest.raises(ValueError, match="segment 0 phi_q"):
        lc.stream_linear_attention([(torch.ones(2, 3), torch.ones(1, 1, 2, 3), torch.ones(1, 1, 2, 3))])
    with pytest.raises(ValueError, match="segment"):
        list(lc.random_segments(10, 0))


def test_topk_attention_with_every_key_is_softmax_attention():
    g = torch.Generator().manual_seed(0)
    q, keys, values = (torch.randn(n, d, generator=g, dtype=torch.float64) for n, d in ((5, 4), (37, 4), (37, 3)))
    full = torch.softmax(q @ keys.T / 2.0, dim=1) @ values
    for block in (1, 5, 1000):                                      # block by block: the same answer
        assert rel_rms(full, lc.topk_attention(q, keys, values, 37, block=block)) < 1e-12
        assert rel_rms(full, lc.topk_attention(q, keys, values, 500, block=block)) < 1e-12
    one = lc.topk_attention(q, keys, values, 1, block=4)
    assert torch.allclose(one, values[(q @ keys.T).argmax(1)])     # k = 1: the best key's value


def test_topk_attention_bad_input():
    q, keys, values = torch.ones(2, 4), torch.ones(5, 4), torch.ones(5, 3)
    with pytest.raises(ValueError, match="k must be"):
        lc.topk_attention(q, keys, values, 0)
    with pytest.raises(ValueError, match="keys"):
        lc.topk_attention(q, torch.ones(5, 3), values, 2)
    with pytest.raises(ValueError, match="values"):
        lc.topk_attention(q, keys, torch.ones(4, 3), 2)


def test_retrieval_sweep_is_deterministic_and_converges_to_full_attention():
    a = lc.retrieval_sweep(512, [1, 16, 512], n_queries=32)
    b = lc.retrieval_sweep(512, [1, 16, 512], n_queries=32)
    assert a == b
    assert a["rows"][-1]["rel_error"] < 1e-5                        # k = memory size: full attention
    assert a["rows"][0]["accuracy"] >= a["full"]["accuracy"] - 1e-9
    assert a["rows"][0]["rel_error"] >= a["rows"][1]["rel_error"] >= a["rows"][2]["rel_error"]
    assert math.isclose(lc.recall_accuracy(torch.eye(3), torch.eye(3), torch.tensor([0, 1, 1])), 2 / 3, rel_tol=1e-6)
