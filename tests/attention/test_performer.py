"""Performer: statistical tests of the estimator, exactness of the kernel-trick rewrite, the mixer."""
import math

import pytest
import torch

from postlib.attention import softmax_attention
from postlib.attention.linear import linear_attention_features
from postlib.attention.performer import (gaussian_projection, kernel_estimate, performer_attention,
                                         performer_features, softmax_kernel_features)
from postlib.testing import rel_rms




def _xy(dim=16, scale=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(dim, generator=g, dtype=torch.float64) * scale,
            torch.randn(dim, generator=g, dtype=torch.float64) * scale)


@pytest.mark.parametrize("kernel", ["positive", "trig"])
@pytest.mark.parametrize("orthogonal", [False, True])
def test_estimator_is_unbiased(kernel, orthogonal):
    """Mean over 600 independent draws of ω (m = 32) is within 4 standard errors of exp(xᵀy)."""
    x, y = _xy()
    est = torch.stack([kernel_estimate(x, y, 32, kernel, orthogonal, seed=s) for s in range(600)])
    target = torch.exp(x @ y)
    stderr = est.std() / math.sqrt(len(est))
    assert abs(est.mean() - target) < 4 * stderr, (est.mean().item(), target.item(), stderr.item())
    # and the test has power: a 10% (positive) / 25% (trig, higher variance) bias would be caught
    assert (0.1 if kernel == "positive" else 0.25) * target > 4 * stderr


def test_error_falls_with_num_features():
    x, y = _xy(scale=0.5)
    target = torch.exp(x @ y)

    def mse(m):
        est = torch.stack([kernel_estimate(x, y, m, "positive", False, seed=s) for s in range(400)])
        return ((est - target) ** 2).mean().item()

    e8, e64, e512 = mse(8), mse(64), mse(512)
    assert e64 < e8 / 3 and e512 < e64 / 3            # ∝ 1/m: 8× more features, ~8× lower MSE


def test_attention_error_falls_with_num_features_and_orthogonal_helps():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 16, generator=g, dtype=torch.float64) * s for s in (0.5, 0.5, 1.0))
    ref = softmax_attention(q, k, v)

    def err(m, orth):
        return sum(rel_rms(ref, performer_attention(q, k, v, m, orthogonal=orth, seed=s)) for s in range(4)) / 4

    assert err(256, True) < err(16, True) / 2
    assert err(64, True) < err(64, False)


def test_orthogonal_projection_rows_are_orthogonal_within_blocks():
    w = gaussian_projection(40, 16, orthogonal=True, seed=3)
    block = w[:16] / w[:16].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(16, dtype=torch.float64))
    assert w.shape == (40, 16)
    assert not torch.equal(gaussian_projection(40, 16, seed=3), gaussian_projection(40, 16, seed=4))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L", [1, 7, 13, 100])
def test_equals_linear_attention_on_its_features(causal, L):
    """The kernel trick is exact: performer_attention == normalised φ(Q)φ(K)ᵀV computed as a matrix."""
    g = torch.Generator().manual_seed(L)
    q, k, v = (torch.randn(1, 2, L, 8, generator=g, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(32, 8, seed=1)
    pq, pk = performer_features(q, k, w, causal=causal)
    A = pq @ pk.transpose(-1, -2)
    if causal:
        A = A.tril()
    explicit = (A @ v) / (A.sum(-1, keepdim=True) + 1e-6)
    out = performer_attention(q, k, v, 32, causal=causal, projection=w)
    assert rel_rms(explicit, out) < 1e-12
    assert rel_rms(out, linear_attention_features(pq, pk, v, causal=causal)) < 1e-12


def test_stabiliser_cancels():
    """Subtracting per-query / global-key maxima changes nothing but overflow behaviour."""
    x = torch.randn(5, 8, dtype=torch.float64)
    w = gaussian_projection(16, 8, seed=0)
    a = softmax_kernel_features(x, w)
    b = softmax_kernel_features(x, w, stabilizer=torch.full((5, 1), 3.0, dtype=torch.float64))
    torch.testing.assert_close(a * math.exp(-3.0), b)


def test_fp32_does_not_overflow_with_large_inputs():
    q, k, v = (torch.randn(1, 1, 32, 16) * 6 for _ in range(3))
    assert torch.isfinite(performer_attention(q, k, v, 64)).all()


def test_bad_inputs():
    q = k = v = torch.randn(1, 1, 4, 8)
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        performer_attention(q, k, v, 0)
    with pytest.raises(TypeError, match="num_features must be an int"):
        performer_attention(q, k, v, 2.5)
    with pytest.raises(ValueError, match="kernel must be one of"):
        performer_attention(q, k, v, 4, kernel="rbf")
    with pytest.raises(ValueError, match=r"projection must have shape \(num_features=4, head_dim=8\)"):
        performer_attention(q, k, v, 4, projection=torch.randn(4, 7))


def test_mixer_redraw_changes_output_and_keeps_step_equal_forward():
    import postlib
    from postlib.registry import run_steps
    torch.manual_seed(0)
    m = postlib.build_mixer("performer", 16, n_heads=2, num_features=24).double().eval()
    x = torch.randn(1, 10, 16, dtype=torch.float64)
    with torch.no_grad():
        y0 = m(x)
        m.redraw_features(seed=5)
        y1 = m(x)
        assert not torch.allclose(y0, y1)
        torch.testing.assert_close(run_steps(m, x), y1)
