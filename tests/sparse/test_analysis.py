"""Counted costs, receptive fields and path lengths against brute force on the dense mask."""
import math

import pytest
import torch

from postlib.sparse import attention_mask, make_pattern
from postlib.sparse import branch_counts
from postlib.sparse.analysis import (path_lengths, pattern_cost, pattern_memory, pattern_scores, reach_matrix,
                                     receptive_field)

KINDS = [("sliding", dict(window=9)), ("longformer", dict(window=4, global_tokens=[0, 50])),
         ("bigbird", dict(block_size=8, num_random_blocks=2, num_global_blocks=1)),
         ("dilated", dict(segment_lengths=[8, 32, 128], dilations=[1, 4, 16]))]


@pytest.mark.parametrize("kind,params", KINDS)
@pytest.mark.parametrize("causal", [False, True])
def test_cost_counts_match_the_mask(kind, params, causal):
    L, tile = 100, 16
    mask = attention_mask(kind, L, causal=causal, **params)
    cost = pattern_cost(kind, L, causal=causal, tile=tile, heads=2, **params)
    assert cost["entries"] == int(mask.sum())
    assert cost["tiles_total"] == 7 * 7
    any_, _ = make_pattern(kind, L, causal=causal, **params).tile_layout(tile)
    assert cost["tiles_computed"] == int(any_.sum())
    assert cost["dense_bytes"] == L * L * 2 * 4 and cost["sparse_bytes"] == int(mask.sum()) * 2 * 4


def test_cost_of_a_band_is_linear_in_length():
    """Window 256, causal: about L·129 entries and (L/64)·3 tiles, against L² — at L = 16k, 1.6% of the tiles."""
    small, big = (pattern_cost("sliding", L, causal=True, window=256) for L in (4096, 16384))
    assert (small["tiles_computed"], big["tiles_computed"]) == (3 * 64 - 3, 3 * 256 - 3)  # 3 a row, fewer first
    assert big["entries"] == 16384 * 129 - 128 * 129 // 2
    assert big["tile_fraction"] < 0.02


@pytest.mark.parametrize("kind,params", KINDS)
def test_receptive_field_is_a_boolean_power(kind, params):
    L = 128
    mask = attention_mask(kind, L, causal=True, **params)
    field = receptive_field(kind, L, layers=3, causal=True, token=100, **params)
    for k in range(4):
        assert torch.equal(field[k], reach_matrix(mask, k)[100])


def test_receptive_field_window_vs_dilated_pyramid():
    """A causal window of half-width h adds h tokens per layer; LongNet's heads with offsets 0 … H−1 grow
    geometrically: after 3 layers they reach all 1024 tokens, the window 49."""
    window = receptive_field("sliding", 1024, window=32, layers=3, causal=True).sum(1).tolist()
    assert window == [1, 17, 33, 49]
    pyramid = receptive_field("dilated", 1024, layers=3, causal=True, heads=64, offset="per_head",
                              segment_lengths=[16, 64, 256, 1024], dilations=[1, 4, 16, 64]).sum(1).tolist()
    assert pyramid[-1] == 1024 and pyramid[2] >= 10 * window[2]


def test_path_lengths_of_a_window():
    """Non-causal band of half-width h: the farthest tokens are ⌈(L − 1)/h⌉ layers apart."""
    out = path_lengths("sliding", 200, window=10)
    assert out["diameter"] == math.ceil(199 / 5) and out["connected"] == 1.0


def test_bigbird_block_graph_equals_token_graph():
    params = dict(block_size=4, num_random_blocks=1, num_global_blocks=0, seed=4)
    blocks = path_lengths("bigbird", 62, **params)
    pattern = make_pattern("bigbird", 62, **params)
    tokens = _token_level(pattern)
    assert blocks["diameter"] == tokens["diameter"]
    assert abs(blocks["mean"] - tokens["mean"]) < 1e-9


def _token_level(pattern):
    """The same search on the token graph (a mask without a coarse component takes the token path)."""
    from scipy.sparse import csgraph, csr_matrix
    import numpy as np

    dist = csgraph.shortest_path(csr_matrix(pattern.dense().T.numpy().astype(np.float32)), unweighted=True)
    off = ~np.eye(pattern.length, dtype=bool)
    return {"diameter": int(dist[off].max()), "mean": float(dist[off].mean())}


def test_bigbird_random_blocks_and_globals_shorten_paths():
    """BigBird §3: a window alone needs ~L/b layers, random blocks ~log L, one global block ≤ 2."""
    base = dict(block_size=16, seed=0)
    window = [path_lengths("bigbird", L, num_random_blocks=0, num_global_blocks=0, **base)["diameter"]
              for L in (512, 2048)]
    random = [path_lengths("bigbird", L, num_random_blocks=2, num_global_blocks=0, **base)["diameter"]
              for L in (512, 2048)]
    star = path_lengths("bigbird", 2048, num_random_blocks=0, num_global_blocks=1, **base)["diameter"]
    assert window == [31, 127] and random[1] <= 10 and random[1] - random[0] <= 4 and star == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="token must be an index"):
        receptive_field("sliding", 10, window=3, token=10)
    with pytest.raises(ValueError, match="square"):
        reach_matrix(torch.ones(3, 4, dtype=torch.bool), 2)


@pytest.mark.parametrize("kind,params", [
    ("sliding", dict(window=7)), ("sliding", dict(window=1)), ("longformer", dict(window=4, global_tokens=[0, 5, 12])),
    ("bigbird", dict(block_size=4, num_random_blocks=2, num_global_blocks=1)),
    ("bigbird", dict(block_size=5, num_random_blocks=1, num_global_blocks=2, seed=3))])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 13, 100])
def test_pattern_scores_formula_counts_the_mask(kind, params, causal, length):
    if kind == "longformer":
        params = dict(params, global_tokens=[g for g in params["global_tokens"] if g < length])
    assert pattern_scores(kind, length, causal=causal, **params) == int(
        attention_mask(kind, length, causal=causal, **params).sum())


@pytest.mark.parametrize("causal", [False, True])
def test_pattern_scores_of_longnet_are_its_branch_scores(causal):
    for length in (13, 100):
        params = dict(segment_lengths=[6, 10], dilations=[1, 3], offset=2)
        want = int(branch_counts(length, causal=causal, **params).sum())
        assert pattern_scores("dilated", length, causal=causal, **params) == want


def test_pattern_memory_at_a_million_tokens():
    """No L × L allocation: a million tokens is counted in well under a second."""
    out = pattern_memory("longformer", 2**20, causal=True, heads=8, window=512, global_tokens=[0, 1, 2, 3])
    h, L = 256, 2**20
    band = L * (h + 1) - h * (h + 1) // 2
    # sink g is outside the band of rows i > g + h: Σ_g (L − g − h − 1) extra scores; the sinks' rows add none
    assert out["scores"] == band + sum(L - g - h - 1 for g in range(4))
    assert out["dense_bytes"] == 2**20 * (2**20 + 1) // 2 * 8 * 4 and out["fraction"] < 1e-3
