"""LongNet's dilated attention: gathered form ≡ dense reference; where the mixture differs from the union mask."""
import itertools

import pytest
import torch

from postlib.sparse import attention_mask, branch_counts, dilated_attention, dilated_attention_reference
from postlib.sparse.attention import masked_attention
from postlib.sparse.longnet import branch_flops, offset_table, selected_positions
from postlib.testing import assert_rel_rms, rel_rms

CONFIGS = [([4, 8, 16], [1, 2, 4]), ([6, 10], [1, 3]), ([5], [2]), ([3, 7], [2, 5])]


def qkv(length, heads=3, d=8, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed + 7 * length)
    return [torch.randn(2, heads, length, d, generator=gen, dtype=dtype) for _ in range(3)]


def one_branch_by_hand(q, k, v, w, r, o, causal):
    """§2.2 literally, for one head: gather every r-th row of each segment, attend, scatter back, zero elsewhere."""
    L = q.shape[0]
    out = torch.zeros_like(v)
    lse = torch.full((L,), float("-inf"), dtype=q.dtype)
    for start in range(0, L, w):
        idx = [p for p in range(start + o, min(start + w, L), r)]
        if not idx:
            continue
        s = q[idx] @ k[idx].T / q.shape[-1] ** 0.5
        if causal:
            s = s.masked_fill(torch.ones(len(idx), len(idx), dtype=torch.bool).triu(1), float("-inf"))
        out[idx] = torch.softmax(s, -1) @ v[idx]
        lse[idx] = torch.logsumexp(s, -1)
    return out, lse


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("length", [1, 13, 37])
def test_gathered_form_equals_reference(config, causal, length):
    seg, dil = config
    q, k, v = qkv(length)
    for offset in (0, "per_head", 1):
        ref = dilated_attention_reference(q, k, v, seg, dil, causal=causal, offset=offset)
        out = dilated_attention(q, k, v, seg, dil, causal=causal, offset=offset, backend="torch")
        assert_rel_rms(ref, out, 1e-12)


def test_reference_is_the_papers_mixture():
    """α_k = s_k / Σ s_k', with s_k each branch's softmax denominator (LongNet §2.2), built by hand."""
    q, k, v = (t[0, 0] for t in qkv(29, heads=1))
    seg, dil = [4, 8, 16], [1, 2, 4]
    branches = [one_branch_by_hand(q, k, v, w, r, 0, True) for w, r in zip(seg, dil)]
    denominators = torch.stack([lse.exp() for _, lse in branches])           # s_k (0 where a branch skips i)
    alpha = denominators / denominators.sum(0)
    expected = sum(a[:, None] * o for a, (o, _) in zip(alpha, branches))
    got = dilated_attention_reference(q[None, None], k[None, None], v[None, None], seg, dil, causal=True)[0, 0]
    assert_rel_rms(expected, got, 1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_mixture_is_attention_biased_by_log_branch_counts(causal):
    """The mixture is one softmax over all branches' keys, a key reached by c branches weighted c times:
    softmax(s + log c). So it equals the union mask exactly when no key is reached twice."""
    L, seg, dil = 37, [4, 8, 16], [1, 2, 4]
    q, k, v = qkv(L)
    counts = branch_counts(L, seg, dil, causal=causal)
    biased = torch.softmax((q @ k.transpose(-1, -2)) / 8 ** 0.5 + counts.double().log(), -1) @ v
    longnet = dilated_attention(q, k, v, seg, dil, causal=causal, backend="torch")
    assert_rel_rms(biased, longnet, 1e-12)
    union = masked_attention(q, k, v, attention_mask("dilated", L, causal=causal, segment_lengths=seg,
                                                     dilations=dil))
    assert (counts > 1).any() and rel_rms(union, longnet) > 1e-2      # here keys overlap: they differ


def test_equals_union_mask_when_branches_do_not_overlap():
    """Offsets that keep the branches' positions apart (w=4,r=2,o=0 and w=4,r=2,o=1 share no key): c ≤ 1."""
    L = 24
    q, k, v = qkv(L, heads=1)
    table = [[0, 1]]
    out = dilated_attention(q, k, v, [4, 4], [2, 2], offset=table, backend="torch")
    union = masked_attention(q, k, v, attention_mask("dilated", L, segment_lengths=[4], dilations=[2], offset=0)
                             | attention_mask("dilated", L, segment_lengths=[4], dilations=[2], offset=1))
    assert_rel_rms(union, out, 1e-12)


def test_gradcheck():
    """Gradients flow through the branch weights α too (torchscale stops them there; we do not)."""
    q, k, v = (t[:1, :2, :10, :3].clone().requires_grad_(True) for t in qkv(10))
    fn = lambda a, b, c: dilated_attention(a, b, c, [4, 8], [1, 2], causal=True, offset="per_head",  # noqa: E731
                                           backend="torch")
    assert torch.autograd.gradcheck(fn, (q, k, v), fast_mode=True)


def test_triton_backend():
    q, k, v = (t[:1, :2].float() for t in qkv(37, d=16))
    ref = dilated_attention_reference(q.double(), k.double(), v.double(), [4, 16], [1, 2], causal=True,
                                      offset="per_head")
    out = dilated_attention(q, k, v, [4, 16], [1, 2], causal=True, offset="per_head", backend="triton")
    assert_rel_rms(ref, out, 1e-5)


def test_offsets_and_positions():
    assert offset_table("per_head", 4, [1, 2, 4]) == [[0, 0, 0], [0, 1, 1], [0, 0, 2], [0, 1, 3]]
    assert offset_table(5, 2, [2, 3]) == [[1, 2], [1, 2]]
    assert selected_positions(13, 5, 2, 1).tolist() == [1, 3, 6, 8, 11]
    with pytest.raises(ValueError, match="one entry per head"):
        offset_table([0, 1], 3, [1])
    with pytest.raises(ValueError, match="one int per"):
        offset_table([[0, 1]], 1, [1])


def test_branch_flops_counts_the_gathered_segments():
    """(L / w)·(w / r)² scores per branch, 4·d flops each: a geometric schedule is linear in L."""
    assert branch_flops(64, [16], [4], 8) == 4 * 4 * 16 * 8
    costs = [branch_flops(L, [64, 128, 256], [1, 2, 4], 16) for L in (1024, 2048, 4096)]
    assert costs[1] == 2 * costs[0] and costs[2] == 2 * costs[1]


def test_bad_input():
    q, k, v = qkv(8)
    with pytest.raises(ValueError, match="segment_lengths and dilations must have the same length"):
        dilated_attention(q, k, v, [2, 4], [1])
    with pytest.raises(ValueError, match="segment_lengths must be >= 1"):
        dilated_attention(q, k, v, [0], [1])
    with pytest.raises(ValueError, match="offset must be an int"):
        dilated_attention(q, k, v, [2], [1], offset="heads")
    with pytest.raises(ValueError, match="backend must be one of"):
        dilated_attention(q, k, v, [2], [1], backend="gpu")
