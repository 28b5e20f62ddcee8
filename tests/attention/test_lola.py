"""LoLA-style hybrid: with room for every token it is softmax attention; the recurrence keeps what the
linear state would recall worst (fp64)."""
import pytest
import torch

from postlib.attention import softmax_attention
from postlib.attention.linear import apply_feature_map
from postlib.attention.lola import init_cache, lola_attention, lola_step
from postlib.testing import assert_rel_rms


def _qkv(L, D=8, Dv=8, B=2, H=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(L)
    return tuple(torch.randn(B, H, L, d, generator=g, dtype=dtype) for d in (D, D, Dv))

@pytest.mark.parametrize("L", [1, 7, 13])
def test_lola_with_room_for_everything_is_softmax(L):
    q, k, v = _qkv(L, Dv=8)
    out = lola_attention(q, k, v, window=4, sparse=max(L - 4, 0), eps=0.0)
    assert_rel_rms(softmax_attention(q, k, v, causal=True), out, 1e-12)


def test_lola_window_one_no_cache_is_exp_current_plus_linear_past():
    """window 1, sparse 0: token t is read exactly, every earlier token only through (S, z)."""
    q, k, v = _qkv(11, Dv=8)
    out = lola_attention(q, k, v, window=1, sparse=0, eps=0.0)
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    S = torch.cumsum(torch.einsum("bhjd,bhjv->bhjdv", pk, v), 2) - torch.einsum("bhjd,bhjv->bhjdv", pk, v)
    z = torch.cumsum(pk, 2) - pk
    e = torch.exp((q * k).sum(-1) / 8 ** 0.5)
    num = e[..., None] * v + torch.einsum("bhid,bhidv->bhiv", pq, S)
    den = e + (pq * z).sum(-1)
    assert_rel_rms(num / den[..., None], out, 1e-12)


def test_lola_evicts_the_best_recalled_token():
    """Two identical old tokens are recalled perfectly once one is in the state; a distinct one is not,
    so the cache keeps the distinct token."""
    D = 4
    cache = init_cache(1, 1, 2, D, dtype=torch.float64)        # window 1 + sparse 1
    same_k, same_v = torch.ones(1, 1, D, dtype=torch.float64), torch.ones(1, 1, D, dtype=torch.float64)
    odd_k, odd_v = -torch.ones(1, 1, D, dtype=torch.float64), 5 * torch.ones(1, 1, D, dtype=torch.float64)
    for kk, vv in ((same_k, same_v), (same_k, same_v), (odd_k, odd_v), (same_k, same_v)):
        _, cache = lola_step(kk, kk, vv, cache, window=1)
    assert 2 in cache["pos"][0, 0].tolist()                    # the distinct token (position 2) stayed exact


def test_lola_rejects_bad_arguments():
    q, k, v = _qkv(5, Dv=8)
    with pytest.raises(ValueError, match="window must be >= 1"):
        lola_attention(q, k, v, window=0)
    with pytest.raises(ValueError, match="one shape"):
        lola_attention(q, k, v[..., :3])


def test_oldest_eviction_keeps_the_most_recent_tokens_and_recall_eviction_keeps_the_pairs():
    """The ablation: evicting the oldest pair keeps the last window + sparse tokens; evicting by self-recall
    error keeps the stored pairs over the query tokens (values 0) on the recall probe, and recalls better."""
    from postlib.attention.lola import lola_memory_trace, recall_error, recall_probe
    q, k, v, asked = recall_probe(8, 16, seed=0)
    L = k.shape[2]
    cache = init_cache(1, 1, 6, 16, dtype=torch.float64)
    for t in range(L):
        _, cache = lola_step(k[:, :, t], k[:, :, t], v[:, :, t], cache, window=2, evict="oldest")
    assert sorted(cache["pos"][0, 0].tolist()) == list(range(L - 6, L))
    kept = [j for j in lola_memory_trace(k[0, 0], v[0, 0], window=2, sparse=4)[-1].tolist() if j < L - 2]
    assert all(j < 8 for j in kept) and len(kept) == 4                        # pairs, not queries
    by_recall = recall_error(lola_attention(q, k, v, window=2, sparse=4), v, asked)
    by_age = recall_error(lola_attention(q, k, v, window=2, sparse=4, evict="oldest"), v, asked)
    assert by_recall < by_age - 0.1
    with pytest.raises(ValueError, match="evict must be one of"):
        lola_attention(q, k, v, evict="newest")
