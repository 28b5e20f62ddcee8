"""Every mask kind against a literal loop over its definition (the issue's words, one (i, j) at a time)."""
import itertools

import pytest
import torch

from postlib.sparse import attention_mask, make_pattern
from postlib.sparse.layout import layout_csr


def loop_mask(length, rule, causal):
    return torch.tensor([[rule(i, j) and (j <= i or not causal) for j in range(length)] for i in range(length)])


def sliding_rule(window):
    return lambda i, j: abs(i - j) <= window // 2


def longformer_rule(window, globals_):
    return lambda i, j: abs(i - j) <= window // 2 or i in globals_ or j in globals_


def dilated_rule(segment_lengths, dilations, offset):
    def rule(i, j):
        for w, r in zip(segment_lengths, dilations):
            same = i // w == j // w
            if same and (i - i // w * w) % r == offset % r and (j - j // w * w) % r == offset % r:
                return True
        return False
    return rule


LENGTHS = (1, 7, 13, 37)


@pytest.mark.parametrize("length,causal", itertools.product(LENGTHS, [False, True]))
@pytest.mark.parametrize("window", [1, 2, 5, 8])
def test_sliding(length, causal, window):
    expected = loop_mask(length, sliding_rule(window), causal)
    assert torch.equal(attention_mask("sliding", length, causal=causal, window=window), expected)


@pytest.mark.parametrize("length,causal", itertools.product((7, 13, 37), [False, True]))
@pytest.mark.parametrize("globals_", [(), (0,), (0, 3, 6)])
def test_longformer(length, causal, globals_):
    expected = loop_mask(length, longformer_rule(4, set(globals_)), causal)
    got = attention_mask("longformer", length, causal=causal, window=4, global_tokens=list(globals_))
    assert torch.equal(got, expected)


@pytest.mark.parametrize("length,causal", itertools.product(LENGTHS, [False, True]))
@pytest.mark.parametrize("pairs,offset", [(([4, 8, 16], [1, 2, 4]), 0), (([6, 10], [1, 3]), 2),
                                          (([5], [7]), 3), (([3, 9], [2, 3]), 1)])
def test_dilated(length, causal, pairs, offset):
    seg, dil = pairs
    expected = loop_mask(length, dilated_rule(seg, dil, offset), causal)
    got = attention_mask("dilated", length, causal=causal, segment_lengths=seg, dilations=dil, offset=offset)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("length,b,r,g", [(37, 4, 2, 1), (40, 8, 1, 2), (13, 5, 3, 0), (1, 4, 1, 1), (64, 4, 0, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_bigbird(length, b, r, g, causal):
    """Block by block: the 3 window blocks, g global block rows and columns, r random blocks in each other
    row, none of them already in the row; then constant on b × b blocks (a last partial block included)."""
    mask = attention_mask("bigbird", length, block_size=b, num_random_blocks=r, num_global_blocks=g, seed=5)
    n = -(-length // b)
    blocks = torch.zeros(n, n, dtype=torch.bool)
    for I, J in itertools.product(range(n), range(n)):
        blocks[I, J] = mask[I * b, J * b]
    for I, J in itertools.product(range(n), range(n)):
        tile = mask[I * b:(I + 1) * b, J * b:(J + 1) * b]
        assert bool(tile.all()) == bool(blocks[I, J]) and bool(tile.any()) == bool(blocks[I, J])  # constant
    for I in range(n):
        window = {J for J in range(n) if abs(I - J) <= 1}
        assert all(blocks[I, J] for J in window)
        if I < g:
            assert blocks[I].all() and blocks[:, I].all()
            continue
        extra = {J for J in range(n) if blocks[I, J]} - window - set(range(g))
        free = n - len(window | set(range(min(g, n))))
        assert len(extra) == min(r, free)
    causal_mask = attention_mask("bigbird", length, causal=causal, block_size=b, num_random_blocks=r,
                                 num_global_blocks=g, seed=5)
    assert torch.equal(causal_mask, mask & torch.ones(length, length, dtype=torch.bool).tril() if causal else mask)


def test_bigbird_random_blocks_are_seeded():
    a = attention_mask("bigbird", 256, block_size=8, num_random_blocks=3, num_global_blocks=1, seed=1)
    assert torch.equal(a, attention_mask("bigbird", 256, block_size=8, num_random_blocks=3, num_global_blocks=1,
                                         seed=1))
    assert not torch.equal(a, attention_mask("bigbird", 256, block_size=8, num_random_blocks=3,
                                             num_global_blocks=1, seed=2))


@pytest.mark.parametrize("kind,params", [
    ("sliding", dict(window=5)), ("longformer", dict(window=4, global_tokens=[0, 7, 11])),
    ("bigbird", dict(block_size=5, num_random_blocks=1, num_global_blocks=2)),
    ("dilated", dict(segment_lengths=[4, 8, 16], dilations=[1, 2, 4])),
    ("dilated", dict(segment_lengths=[5], dilations=[7], offset=3))])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length,tile", [(13, 4), (37, 16), (64, 16), (100, 8)])
def test_tile_layout_against_the_dense_mask(kind, params, causal, length, tile):
    """``any`` never misses a tile with an allowed entry; ``full`` is only claimed for fully allowed tiles
    inside the sequence; the compressed rows list exactly the ``any`` tiles, full ones first."""
    if kind == "longformer" and length < 12:
        params = dict(window=4, global_tokens=[0, 7])
    pattern = make_pattern(kind, length, causal=causal, **params)
    mask = pattern.dense()
    any_, full = pattern.tile_layout(tile)
    n = any_.shape[0]
    padded = torch.zeros(n * tile, n * tile, dtype=torch.bool)
    padded[:length, :length] = mask
    tiles = padded.view(n, tile, n, tile).permute(0, 2, 1, 3)
    assert (tiles.any(-1).any(-1) <= any_).all()
    inside = torch.arange(n * tile) < length
    rows_in = inside.view(n, tile)
    for I, J in full.nonzero().tolist():
        assert tiles[I, J][rows_in[I]].all() and rows_in[J].all()
    if kind in ("sliding", "longformer"):   # exact for the band and the global tokens
        assert torch.equal(tiles.any(-1).any(-1), any_)
    row_ptr, col_idx, full_end = layout_csr(any_, full)
    for I in range(n):
        cols = col_idx[row_ptr[I]:row_ptr[I + 1]].tolist()
        assert sorted(cols) == any_[I].nonzero().flatten().tolist()
        assert all(full[I, J] for J in col_idx[row_ptr[I]:full_end[I]].tolist())
        assert not any(full[I, J] for J in col_idx[full_end[I]:row_ptr[I + 1]].tolist())


def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="window must be >= 1"):
        attention_mask("sliding", 8, window=0)
    with pytest.raises(ValueError, match=r"global_tokens must be indices in \[0, length=8\), got \[9\]"):
        attention_mask("longformer", 8, window=3, global_tokens=[0, 9])
    with pytest.raises(ValueError, match="global_tokens must be >= 0"):
        attention_mask("longformer", 8, window=3, global_tokens=[-1])
    with pytest.raises(ValueError, match="segment_lengths and dilations must have the same length"):
        attention_mask("dilated", 8, segment_lengths=[2, 4], dilations=[1])
    with pytest.raises(ValueError, match="dilations must be >= 1"):
        attention_mask("dilated", 8, segment_lengths=[2], dilations=[0])
    with pytest.raises(TypeError, match=r"needs window="):
        attention_mask("sliding", 8)
    with pytest.raises(TypeError, match="unexpected parameter"):
        attention_mask("sliding", 8, window=3, dilations=[1])
    with pytest.raises(ValueError, match="kind must be one of"):
        attention_mask("strided", 8, window=3)
    with pytest.raises(ValueError, match="length must be >= 1"):
        attention_mask("sliding", 0, window=3)
    with pytest.raises(TypeError, match="window must be an int"):
        attention_mask("sliding", 8, window=2.5)
