"""The sympy derivation of LongNet's mixture is checked against the numeric code."""
import pytest
import torch

from postlib.sparse import dilated_attention
from postlib.sparse.derive import mixture_identity, mixture_numeric


def test_mixture_is_the_biased_softmax_symbolically():
    mixture, biased, union, residual = mixture_identity()
    assert residual == 0
    # and it is *not* the union softmax when a key (here key 2) is in both branches
    assert mixture_identity(3, (0, 1), (1, 2))[3] == 0


def test_derivation_matches_dilated_attention():
    """One query, two branches: (w=4, r=1) sees keys 0..3, (w=4, r=2) sees keys 0 and 2 — keys 0 and 2 twice.
    The lambdified mixture equals dilated_attention for the query at position 0 (not causal, L = 4)."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 4, 1, dtype=torch.float64) for _ in range(3))
    out = dilated_attention(q, k, v, [4, 4], [1, 2], backend="torch")
    mix, biased, union = mixture_numeric(4, (0, 1, 2, 3), (0, 2))
    scores = (q[0, 0, 0] * k[0, 0, :, 0]).tolist()            # head_dim 1: scale 1
    values = v[0, 0, :, 0].tolist()
    assert abs(mix(scores, values) - out[0, 0, 0, 0].item()) < 1e-12
    assert abs(biased(scores, values) - out[0, 0, 0, 0].item()) < 1e-12
    assert abs(union(scores, values) - out[0, 0, 0, 0].item()) > 1e-6


def test_bad_branches():
    with pytest.raises(ValueError, match="branch_b must list key indices"):
        mixture_identity(3, (0,), (5,))
