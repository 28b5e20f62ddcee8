"""The sympy derivation of the online-softmax merge is a test: symbolic residuals are 0,
a wrong merge leaves a non-zero residual, and the lambdified merge equals the library's
``online_softmax_update`` and ``softmax_attention`` numerically."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from postlib.attention import derive
from postlib.attention.flash import online_softmax_update
from postlib.attention.softmax import softmax_attention


@pytest.mark.parametrize("reference", ["max", "free"])
@pytest.mark.parametrize("n_a,n_b", [(1, 1), (2, 3)])
def test_merge_equals_softmax_over_the_concatenation(n_a, n_b, reference):
    residuals = derive.merge_residuals(n_a, n_b, reference=reference)
    assert set(residuals) == {"l", "acc", "output"}
    assert all(r == 0 for r in residuals.values()), residuals


def test_a_merge_without_rescaling_is_caught():
    # The proof must be able to fail: drop the e^{m_A - m} factors and the residual is not 0.
    s_a, v_a = derive.block_symbols(2, "A")
    s_b, v_b = derive.block_symbols(1, "B")
    l_a, acc_a = derive.block_statistics(s_a, v_a, sp.Max(*s_a))
    l_b, acc_b = derive.block_statistics(s_b, v_b, sp.Max(*s_b))
    wrong = (acc_a + acc_b) / (l_a + l_b)
    exact = sum(sp.exp(s) * v for s, v in zip(s_a + s_b, v_a + v_b)) / sum(sp.exp(s) for s in s_a + s_b)
    residual = derive._zero(wrong - exact)
    assert residual != 0
    point = {s: val for s, val in zip(s_a + s_b, (0.0, 2.0, -1.0))} | {v: val for v, val in zip(v_a + v_b, (1, 2, 3))}
    assert abs(float(residual.subs(point))) > 1e-3


def test_rescaling_identity_and_associativity():
    eq, residual = derive.rescaling_identity()
    assert isinstance(eq, sp.Eq) and residual == 0
    res = derive.associativity_residuals()
    assert len(res) == 6 and all(r == 0 for r in res.values()), res


def test_merge_rule_is_displayable():
    eqs = derive.merge_rule()
    assert len(eqs) == 3
    latex = [sp.latex(e) for e in eqs]
    assert "max" in latex[0] and "e^{" in latex[1] and "e^{" in latex[2]


def _stats_of_block(scores, values):
    """(m, l, acc) of one block by the library's update from the empty state."""
    lead = scores.shape[:-1]
    m = torch.full(lead, -math.inf, dtype=torch.float64)
    l = torch.zeros(lead, dtype=torch.float64)
    acc = torch.zeros(*lead, values.shape[-1], dtype=torch.float64)
    return online_softmax_update(m, l, acc, scores, values)


@pytest.mark.parametrize("length,split", [(2, 1), (7, 3), (13, 12), (100, 37)])
def test_lambdified_merge_matches_the_library(length, split):
    torch.manual_seed(length)
    q = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    k = torch.randn(2, 3, length, 8, dtype=torch.float64)
    v = torch.randn(2, 3, length, 6, dtype=torch.float64)
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    stats_a = _stats_of_block(scores[..., :split], v[:, :, :split])
    stats_b = _stats_of_block(scores[..., split:], v[:, :, split:])
    m, l, acc = derive.merge_numeric(*[t.numpy() for t in stats_a + stats_b])
    # 1) equal to the library's sequential update (A, then B on top)
    m_lib, l_lib, acc_lib = online_softmax_update(*stats_a, scores[..., split:], v[:, :, split:])
    np.testing.assert_allclose(m, m_lib.numpy(), rtol=1e-13)
    np.testing.assert_allclose(l, l_lib.numpy(), rtol=1e-12)
    np.testing.assert_allclose(acc, acc_lib.numpy(), rtol=1e-12, atol=1e-13)
    # 2) acc / l is softmax attention over all keys
    np.testing.assert_allclose(acc / l[..., None], softmax_attention(q, k, v).numpy(), rtol=1e-11, atol=1e-12)


def test_merge_is_stable_for_huge_scores_and_handles_an_empty_block():
    scores = torch.tensor([[800.0, 805.0, 790.0]], dtype=torch.float64)
    values = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    a, b = _stats_of_block(scores[:, :2], values[:2]), _stats_of_block(scores[:, 2:], values[2:])
    m, l, acc = derive.merge_numeric(*[t.numpy() for t in a + b])
    expected = torch.softmax(scores, -1) @ values
    np.testing.assert_allclose(acc / l[..., None], expected.numpy(), rtol=1e-12)
    empty = (np.array([-np.inf]), np.array([0.0]), np.zeros((1, 1)))
    m2, l2, acc2 = derive.merge_numeric(*empty, *[t.numpy() for t in a])
    np.testing.assert_allclose(acc2 / l2[..., None], (torch.softmax(scores[:, :2], -1) @ values[:2]).numpy())


def test_merge_numeric_names_bad_shapes():
    good = (np.zeros(3), np.ones(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="acc_a and acc_b must have shape"):
        derive.merge_numeric(*good, np.zeros(3), np.ones(3), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="m_a, l_a, m_b, l_b"):
        derive.merge_numeric(*good, np.zeros(4), np.ones(4), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="n_a must be >= 1"):
        derive.merge_residuals(0, 1)
    with pytest.raises(ValueError, match="reference must be"):
        derive.merge_residuals(1, 1, reference="zero")


def test_attention_costs_follow_the_formula():
    c = derive.attention_costs(1024, 64)
    assert c["flops_materialised"] == 4 * 1024 * 1024 * 64
    assert c["flops_tiled"] == 4 * 1024 * 1024 * 64 + 16 * 1024 * 65
    assert c["bytes_materialised"] == 4 * (4 * 1024 * 64 + 2 * 1024 * 1024)
    assert c["bytes_tiled"] == 4 * (4 * 1024 * 64 + 2 * 1024 * 64 + 1024 * 66)
    # quadratic vs linear: doubling L quadruples the materialised score memory, not the tiled one
    c2 = derive.attention_costs(2048, 64)
    assert c2["bytes_materialised"] > 3.5 * c["bytes_materialised"]
    assert c2["bytes_tiled"] < 2.1 * c["bytes_tiled"]
    assert derive.attention_costs(3, 4, block_size=64)["bytes_tiled"] == 4 * (4 * 3 * 4 + 2 * 3 * 3 + 3 * 6)
    assert derive.attention_costs(8, 4, batch=2, heads=3)["flops_materialised"] == 6 * 4 * 64 * 4
    with pytest.raises(ValueError, match="head_dim must be >= 1"):
        derive.attention_costs(8, 0)
    with pytest.raises(TypeError, match="length must be an int"):
        derive.attention_costs(8.0, 4)
