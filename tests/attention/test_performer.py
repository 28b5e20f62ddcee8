"""Performer: statistical tests of the estimator, exactness of the kernel-trick rewrite, the mixer."""
import math

import pytest
import torch

from postlib.attention import softmax_attention
from postlib.attention.linear import linear_attention_features
from postlib.attention.performer import (favor_draws, gaussian_projection, kernel_estimate, kernel_mse_theory,
                                         performer_attention, performer_reference, softmax_kernel_features)
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


FORMS = {"non-causal": dict(causal=False), "recurrent": dict(causal=True, backend="recurrent"),
         "chunked (C=64)": dict(causal=True), "chunked (C=5)": dict(causal=True, chunk_size=5),
         "chunked (C=1)": dict(causal=True, chunk_size=1)}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("L", [1, 7, 13, 100])
def test_every_form_equals_the_reference(form, L):
    """The stabilised forms compute exactly Σ_r e^{a_ir+b_jr} normalised over keys (the reference, from the
    logarithms of the weights), at awkward lengths and chunk sizes, in float64."""
    g = torch.Generator().manual_seed(L)
    q, k, v = (torch.randn(1, 2, L, 8, generator=g, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(32, 8, seed=1)
    kw = FORMS[form]
    out = performer_attention(q, k, v, 32, projection=w, eps=0.0, **kw)
    assert rel_rms(performer_reference(q, k, v, w, causal=kw["causal"]), out) < 1e-12


@pytest.mark.parametrize("causal", [False, True])
def test_reference_is_the_normalised_random_feature_kernel(causal):
    """The reference equals the plain definition with raw features (φ(Q)φ(K)ᵀ masked, rows normalised) where
    raw features are safe (moderate norms)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 11, 8, generator=g, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(24, 8, seed=2)
    s = 8 ** -0.25
    A = softmax_kernel_features(q * s, w) @ softmax_kernel_features(k * s, w).transpose(-1, -2)
    if causal:
        A = A.tril()
    assert rel_rms((A @ v) / A.sum(-1, keepdim=True), performer_reference(q, k, v, w, causal)) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_large_norms_stay_a_weighted_mean_of_v(causal, dtype):
    """q, k ×16: raw features underflow (e^{−300}) and eps dominated, giving outputs ~1e-19 for v ~ 1. The
    stabilised forms keep every output a weighted mean of the values it may see, equal to the reference."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 40, 16, generator=g, dtype=torch.float64) for _ in range(3))
    q, k = 16 * q, 16 * k
    w = gaussian_projection(64, 16, seed=0)
    ref = performer_reference(q, k, v, w, causal)
    out = performer_attention(q.to(dtype), k.to(dtype), v.to(dtype), 64, causal=causal, projection=w.to(dtype))
    assert rel_rms(ref, out.double()) < (1e-4 if dtype == torch.float32 else 2e-6)   # eps = 1e-6 against a denominator ≥ 1
    seen_max = v.cummax(2).values if causal else v.amax(2, keepdim=True)
    seen_min = v.cummin(2).values if causal else v.amin(2, keepdim=True)
    assert (out.double() <= seen_max + 1e-5).all() and (out.double() >= seen_min - 1e-5).all()
    assert out.abs().mean() > 0.1                                     # not collapsed towards 0
    # the test has power: unstabilised features collapse on these inputs
    s = 16 ** -0.25
    raw = linear_attention_features(softmax_kernel_features((q * s).to(dtype), w.to(dtype)),
                                    softmax_kernel_features((k * s).to(dtype), w.to(dtype)), v.to(dtype),
                                    causal=causal)
    assert rel_rms(ref, raw.double()) > 0.5


def test_causal_stabiliser_never_looks_ahead():
    """The key maximum is a running one: a later key 100× larger leaves every earlier output as it was (to
    rounding: a chunk is split around such a key), where a maximum over all keys would underflow them."""
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 2, 30, 8, generator=g) for _ in range(3))
    k2 = k.clone()
    k2[:, :, 20:] *= 100
    for backend, chunk in (("chunked", 64), ("chunked", 7), ("recurrent", 16)):
        a = performer_attention(q, k, v, 16, causal=True, backend=backend, chunk_size=chunk)
        b = performer_attention(q, k2, v, 16, causal=True, backend=backend, chunk_size=chunk)
        torch.testing.assert_close(a[:, :, :20], b[:, :, :20], rtol=1e-5, atol=1e-6)
    assert rel_rms(performer_reference(q.double(), k2.double(), v.double(), gaussian_projection(16, 8), True),
                   b.double()) < 1e-4


def test_chunked_and_recurrent_gradients_agree():
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 2, 13, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grads = []
    for kw in (dict(backend="recurrent"), dict(chunk_size=4), dict(chunk_size=16)):
        out = performer_attention(q, k, v, 16, causal=True, **kw)
        grads.append(torch.autograd.grad(out.square().sum(), (q, k, v)))
    for other in grads[1:]:
        for x, y in zip(grads[0], other):
            torch.testing.assert_close(x, y)


def test_lemma2_variances():
    """The measured MSE of one iid draw matches Lemma 2 for both kernels (within 20%, 3000 draws). Moderate
    norms: at |x + y|² ≈ 8 the positive estimate is log-normal with a tail that 3000 draws cannot sample."""
    x, y = _xy(scale=0.3, seed=2)
    target = torch.exp(x @ y)
    for kernel in ("positive", "trig"):
        est = torch.stack([kernel_estimate(x, y, 8, kernel, False, seed=s) for s in range(3000)])
        measured = ((est - target) ** 2).mean()
        theory = kernel_mse_theory(x, y, 8, kernel)
        assert abs(measured / theory - 1) < 0.2, (kernel, measured.item(), theory.item())


def test_numerator_and_denominator_are_unbiased_but_their_ratio_is_not():
    """Averages of N_s and D_s converge to the exact sums; the average of the outputs N_s/D_s does not
    converge to softmax attention (the ratio of two unbiased estimators is biased)."""
    g = torch.Generator().manual_seed(0)
    q, k = (0.7 * torch.randn(24, 8, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(24, 4, generator=g, dtype=torch.float64)
    n, d = favor_draws(q, k, v, 8, 1500)
    A = torch.exp(q @ k.T / math.sqrt(8))
    exact_n, exact_d = A @ v, A.sum(-1)
    assert rel_rms(exact_n, n.mean(0)) < 0.15 and rel_rms(exact_d, d.mean(0)) < 0.1
    soft = exact_n / exact_d[:, None]
    average_of_outputs = (n / d[..., None]).mean(0)
    ratio_of_averages = n.mean(0) / d.mean(0)[:, None]
    assert rel_rms(soft, average_of_outputs) > 3 * rel_rms(soft, ratio_of_averages)


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
    with pytest.raises(ValueError, match="backend must be one of"):
        performer_attention(q, k, v, 4, causal=True, backend="torch")
    with pytest.raises(ValueError, match="same length"):
        performer_attention(q, k[:, :, :3], v[:, :, :3], 4, causal=True)


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
    trig = postlib.build_mixer("performer", 16, n_heads=2, num_features=8, kernel="trig").double().eval()
    with torch.no_grad():
        torch.testing.assert_close(run_steps(trig, x), trig(x))


def test_mixer_input_times_ten_keeps_its_attention_a_weighted_mean():
    """An input ×10 used to put every denominator below eps. Now the mixer's attention equals the reference
    (fp32 against fp64) and stepping still equals the forward pass."""
    import postlib
    from postlib.registry import run_steps
    torch.manual_seed(0)
    m = postlib.build_mixer("performer", 32, n_heads=2).eval()
    x = 10 * torch.randn(2, 40, 32)
    with torch.no_grad():
        q, k, v = m.split_heads(x)
        ref = performer_reference(q.double(), k.double(), v.double(), m.projection.double(), causal=True)
        assert rel_rms(ref, m.attend(q, k, v).double()) < 1e-4
        assert rel_rms(m(x), run_steps(m, x)) < 1e-4
        assert m.attend(q, k, v).abs().mean() > 0.1 * v.abs().mean()
