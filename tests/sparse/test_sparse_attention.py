"""The block-sparse PyTorch form equals masked dense attention (fp64), and never holds the L × L scores."""
import pytest
import torch

import postlib
from postlib.bench import peak_memory
from postlib.sparse import attention_mask, blocked_attention, make_pattern, sparse_attention, \
    sparse_attention_reference
from postlib.sparse.attention import masked_attention
from postlib.testing import assert_rel_rms

CASES = [("sliding", dict(window=5)), ("sliding", dict(window=1)),
         ("longformer", dict(window=4, global_tokens=[0, 5, 12])),
         ("bigbird", dict(block_size=4, num_random_blocks=2, num_global_blocks=1, seed=3)),
         ("bigbird", dict(block_size=5, num_random_blocks=1, num_global_blocks=2)),
         ("dilated", dict(segment_lengths=[4, 8, 16], dilations=[1, 2, 4])),
         ("dilated", dict(segment_lengths=[6, 10], dilations=[1, 3], offset=2))]


def qkv(length, heads=3, d=8, dv=None, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed + length)
    make = lambda dim: torch.randn(2, heads, length, dim, generator=gen, dtype=dtype)  # noqa: E731
    return make(d), make(d), make(dv or d)


def params_for(kind, params, length):
    if kind == "longformer":
        return dict(params, global_tokens=[g for g in params["global_tokens"] if g < length])
    return params


def test_reference_is_masked_dense_softmax():
    """The reference, spelled out for one row: softmax over the allowed keys only; other weights are 0."""
    q, k, v = qkv(13, heads=1)
    mask = attention_mask("sliding", 13, window=5)
    out = sparse_attention_reference(q, k, v, "sliding", window=5)
    i = 6
    keys = mask[i].nonzero().flatten()
    w = torch.softmax(q[0, 0, i] @ k[0, 0, keys].T / 8 ** 0.5, dim=0)
    torch.testing.assert_close(out[0, 0, i], w @ v[0, 0, keys])


@pytest.mark.parametrize("kind,params", CASES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length,tile", [(1, 16), (13, 4), (37, 16), (100, 16), (64, 64)])
def test_torch_form_equals_reference_fp64(kind, params, causal, length, tile):
    params = params_for(kind, params, length)
    q, k, v = qkv(length, dv=5)
    ref = sparse_attention_reference(q, k, v, kind, causal=causal, **params)
    out = sparse_attention(q, k, v, kind, causal=causal, backend="torch", tile=tile, **params)
    assert out.shape == (2, 3, length, 5) and out.dtype == torch.float64
    assert_rel_rms(ref, out, 1e-12)


def test_rows_without_keys_output_zeros():
    """Offset 3 with r = 4 and w = 4 keeps only position 3 of each segment: the other rows see nothing."""
    q, k, v = qkv(13)
    params = dict(segment_lengths=[4], dilations=[4], offset=3)
    out = sparse_attention(q, k, v, "dilated", backend="torch", tile=4, **params)
    empty = ~attention_mask("dilated", 13, **params).any(1)
    assert empty.sum() == 10 and (out[:, :, empty] == 0).all()
    assert torch.isfinite(out).all()
    assert_rel_rms(sparse_attention_reference(q, k, v, "dilated", **params), out, 1e-12)


def test_per_head_offsets():
    q, k, v = qkv(37, heads=4)
    params = dict(segment_lengths=[4, 16], dilations=[1, 4])
    for offset in ("per_head", [3, 0, 1, 1]):
        out = sparse_attention(q, k, v, "dilated", causal=True, backend="torch", tile=8, offset=offset, **params)
        offsets = range(4) if offset == "per_head" else offset
        for h, o in enumerate(offsets):
            mask = attention_mask("dilated", 37, causal=True, offset=o, **params)
            assert_rel_rms(masked_attention(q[:, h], k[:, h], v[:, h], mask), out[:, h], 1e-12)
    with pytest.raises(ValueError, match="one int per head"):
        sparse_attention(q, k, v, "dilated", offset=[0, 1], **params)


def test_gradcheck_torch_form():
    """The PyTorch form is plain autograd; gradcheck it in fp64 on a small layout with masked and empty tiles."""
    for kind, params in [("longformer", dict(window=3, global_tokens=[0, 7])),
                         ("dilated", dict(segment_lengths=[4, 8], dilations=[1, 2], offset=1))]:
        q, k, v = (t[:1, :1].clone().requires_grad_(True) for t in qkv(11, d=4))
        pattern = make_pattern(kind, 11, causal=True, **params)
        assert torch.autograd.gradcheck(lambda a, b, c: blocked_attention(a, b, c, pattern, tile=4), (q, k, v),
                                        fast_mode=True)


def test_scale_and_lse():
    q, k, v = qkv(21)
    pattern = make_pattern("sliding", 21, window=6)
    out, lse = blocked_attention(q, k, v, pattern, tile=8, scale=0.3, return_lse=True)
    ref, ref_lse = masked_attention(q, k, v, pattern.dense(), scale=0.3, return_lse=True)
    assert_rel_rms(ref, out, 1e-12)
    assert_rel_rms(ref_lse, lse, 1e-12)


def test_never_builds_the_square():
    """At L = 8192 the dense fp32 scores alone would take 256 MiB; the blocked form stays far below."""
    length = 8192
    q, k, v = (torch.randn(1, 1, length, 32) for _ in range(3))
    with torch.no_grad():
        peak = peak_memory(lambda: sparse_attention(q, k, v, "sliding", causal=True, window=128, backend="torch"))
    assert peak < length * length * 4 / 8, f"{peak / 2**20:.1f} MiB"


def test_bad_input():
    q, k, v = qkv(8)
    with pytest.raises(ValueError, match="backend must be one of"):
        sparse_attention(q, k, v, "sliding", window=3, backend="cuda")
    with pytest.raises(ValueError, match="same length"):
        sparse_attention(q, k[:, :, :5], v[:, :, :5], "sliding", window=3)
    with pytest.raises(ValueError, match="window must be >= 1"):
        sparse_attention(q, k, v, "sliding", window=0)
    with pytest.raises(ValueError, match=r"q must have 4 dimensions"):
        sparse_attention(q[0], k, v, "sliding", window=3)
    with pytest.raises(ValueError, match="global_tokens must be indices"):
        sparse_attention(q, k, v, "longformer", window=3, global_tokens=[8])
    bad = v.clone()
    bad[0, 0, 7, 0] = float("nan")
    with pytest.raises(ValueError, match=r"v must be finite, but v\[0, 0, 7, 0\] = nan"):
        sparse_attention(q, k, bad, "sliding", causal=True, window=3)


def test_empty_batch():
    q, k, v = qkv(9)
    for kind, params in [("sliding", dict(window=3)), ("dilated", dict(segment_lengths=[4], dilations=[2]))]:
        assert sparse_attention(q[:0], k[:0], v[:0], kind, backend="torch", **params).shape == (0, 3, 9, 8)


def test_non_finite_input_can_be_let_through_on_purpose():
    q, k, v = qkv(8)
    v[0, 0, 7, 0] = float("nan")
    with postlib.allow_nonfinite():
        out = sparse_attention(q, k, v, "sliding", causal=True, window=3, backend="torch", tile=8)
    assert torch.isnan(out[0, 0, 7]).any()
    with pytest.raises(ValueError, match="scale must be a finite number"):
        sparse_attention(q, k, q, "sliding", window=3, scale=float("nan"))
