"""Mega's damped EMA (FFT ≡ loop ≡ kernel), its link to a diagonal SSM, Mega-chunk's local attention, the mixer."""
import math

import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.ssm.ema import damped_ema, ema_kernel, ema_step
from postlib.ssm.mega import chunked_causal_attention, local_causal_mask
from postlib.testing import assert_rel_rms, rel_rms
from tests.conftest import AWKWARD_LENGTHS


def _params(D=5, h=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    alpha = torch.rand(D, h, generator=g, dtype=dtype) * 0.9 + 0.05
    delta = torch.rand(D, h, generator=g, dtype=dtype) * 0.9 + 0.05
    beta, eta = (torch.randn(D, h, generator=g, dtype=dtype) for _ in range(2))
    return alpha, delta, beta, eta


@pytest.mark.parametrize("L", AWKWARD_LENGTHS + (1000,))
def test_fft_equals_the_recurrence(L):
    x = torch.randn(2, L, 5, dtype=torch.float64)
    p = _params()
    ref = damped_ema(x, *p, backend="recurrent")
    assert_rel_rms(ref, damped_ema(x, *p, backend="fft"), 1e-12)
    assert_rel_rms(ref, damped_ema(x, *p), 1e-12)


def test_kernel_is_the_impulse_response_and_the_closed_form():
    alpha, delta, beta, eta = _params(D=2, h=4)
    L = 30
    impulse = torch.zeros(1, L, 2, dtype=torch.float64)
    impulse[0, 0] = 1.0
    K = ema_kernel(alpha, delta, beta, eta, L)
    torch.testing.assert_close(damped_ema(impulse, alpha, delta, beta, eta, backend="recurrent")[0].T, K)
    for t in (0, 1, 7, 29):
        closed = (eta * alpha * beta * (1 - alpha * delta) ** t).sum(-1)
        torch.testing.assert_close(K[:, t], closed)


def test_ema_is_a_real_diagonal_ssm():
    """x_{t} → h_t = Ā h_{t−1} + B̄ x_t, y_t = C h_t with Ā = diag(1 − αδ), B̄ = αβ, C = η: an S4D-style diagonal
    SSM whose eigenvalues are real and in (0, 1); its kernel C Ā^t B̄ is the EMA kernel."""
    alpha, delta, beta, eta = _params(D=3, h=4)
    A_bar, B_bar = 1 - alpha * delta, alpha * beta
    assert ((A_bar > 0) & (A_bar < 1)).all()
    t = torch.arange(12, dtype=torch.float64)
    K_ssm = (eta[..., None] * A_bar[..., None] ** t * B_bar[..., None]).sum(1)
    torch.testing.assert_close(K_ssm, ema_kernel(alpha, delta, beta, eta, 12))


def test_step_continues_the_sequence():
    alpha, delta, beta, eta = _params()
    x = torch.randn(3, 11, 5, dtype=torch.float64)
    state = torch.zeros(3, 5, 3, dtype=torch.float64)
    ys = []
    for t in range(11):
        y, state = ema_step(x[:, t], state, alpha, delta, beta, eta)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), damped_ema(x, alpha, delta, beta, eta, backend="fft"))


def test_gradcheck_fft_and_recurrent():
    alpha, delta, beta, eta = (p.requires_grad_(True) for p in _params(D=2, h=2))
    x = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)
    for backend in ("fft", "recurrent"):
        fn = lambda *a: damped_ema(*a, backend=backend)
        assert torch.autograd.gradcheck(fn, (x, alpha, delta, beta, eta))


def test_half_precision_computes_in_fp32_and_empty_batch_is_empty():
    p = _params(dtype=torch.float32)
    x = torch.randn(2, 40, 5)
    out = damped_ema(x.bfloat16(), *p)
    assert out.dtype == torch.bfloat16
    assert rel_rms(damped_ema(x, *p), out) < 1e-2
    assert damped_ema(torch.zeros(0, 7, 5), *p).shape == (0, 7, 5)


def test_errors_name_the_argument():
    alpha, delta, beta, eta = _params()
    x = torch.randn(2, 8, 5, dtype=torch.float64)
    for name, bad in (("alpha", 0.0), ("alpha", 1.0), ("delta", 1.2), ("delta", -0.1)):
        args = dict(alpha=alpha.clone(), delta=delta.clone(), beta=beta, eta=eta)
        args[name][0, 0] = bad
        with pytest.raises(ValueError, match=rf"{name} must lie strictly inside \(0, 1\)"):
            damped_ema(x, **args)
    with pytest.raises(ValueError, match=r"alpha must have shape \(dim, h\) with dim = 4"):
        damped_ema(x[..., :4], alpha, delta, beta, eta)
    with pytest.raises(ValueError, match=r"eta must have the shape of alpha \(dim, h\) = \(5, 3\)"):
        damped_ema(x, alpha, delta, beta, eta[:, :2])
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(batch, length, dim\)"):
        damped_ema(x[0], alpha, delta, beta, eta)
    with pytest.raises(ValueError, match="backend must be one of"):
        damped_ema(x, alpha, delta, beta, eta, backend="scan")
    with pytest.raises(TypeError, match="beta has dtype torch.float32"):
        damped_ema(x, alpha, delta, beta.float(), eta)


def test_fft_rejects_non_finite_input_and_the_loop_stays_causal():
    p = _params()
    x = torch.randn(1, 12, 5, dtype=torch.float64)
    x[0, 8, 2] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite, but x\[0, 8, 2\] = nan: the FFT mixes"):
        damped_ema(x, *p, backend="fft")
    y = damped_ema(x, *p, backend="recurrent")
    assert torch.isfinite(y[:, :8]).all() and torch.isnan(y[:, 8:, 2]).all()


# --- cross-check --------------------------------------------------------------------------------------------------
def test_mega_pytorch_multi_headed_ema():
    """mega-pytorch's ``MultiHeadedEMA`` (causal): h per EMA head, α_h and δ_h shared by all channels, kernel
    α ((1 − α) δ)^t — its damping multiplies (1 − α) by δ where ours (the paper's, and the official code's) is
    1 − αδ. Same family: choose our α' ∈ (0, 1) with α'δ' = 1 − (1 − α)δ, β' = α·expansion/α', η' = reduction.
    Their tensors are (heads, dim), ours (dim, h)."""
    mp = pytest.importorskip("mega_pytorch.mega_pytorch")
    torch.manual_seed(0)
    dim, heads, L = 6, 4, 33
    ema = mp.MultiHeadedEMA(dim=dim, heads=heads).double()
    x = torch.randn(2, L, dim, dtype=torch.float64)
    with torch.no_grad():
        theirs = ema(x)
        a, d = torch.sigmoid(ema.alphas), torch.sigmoid(ema.dampen_factors)       # (heads,)
        keep = (1 - a) * d                                                       # their per-step factor
        alpha = ((1 + (1 - keep)) / 2)[None, :].expand(dim, heads)                # any α' > 1 − keep works
        delta = (1 - keep)[None, :] / alpha
        beta = (a[:, None] * ema.expansion).T / alpha
        eta = ema.reduction.T.clone()
        ours = damped_ema(x, alpha.contiguous(), delta.contiguous(), beta.contiguous(), eta)
    assert ((delta > 0) & (delta < 1)).all()
    assert rel_rms(theirs, ours) < 1e-10


# --- Mega-chunk's attention and the mixer ---------------------------------------------------------------------
@pytest.mark.parametrize("L,C", [(1, 4), (13, 4), (16, 4), (10, None), (7, 50)])
def test_chunked_attention_equals_masked_attention(L, C):
    g = torch.Generator().manual_seed(L)
    q, k, v = (torch.randn(2, L, d, generator=g, dtype=torch.float64) for d in (6, 6, 5))
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(6)
    ref = torch.softmax(scores.masked_fill(~local_causal_mask(L, C), float("-inf")), -1) @ v
    assert_rel_rms(ref, chunked_causal_attention(q, k, v, C), 1e-12)


def test_local_mask_is_block_diagonal_and_causal():
    m = local_causal_mask(6, 3)
    expected = torch.tensor([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                             [0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m, expected)


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 5])
def test_mega_step_equals_forward(chunk_size):
    torch.manual_seed(0)
    mixer = build_mixer("mega", 16, chunk_size=chunk_size, ema_dim=4).double().eval()
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-9, atol=1e-10)


def test_mega_chunk_crosses_chunks_only_through_the_ema():
    """Changing chunk 1 changes chunk 2's output; with the EMA's input weights β set to 0 (so X' carries only
    ω ⊙ X) the attention of chunk 2 cannot see chunk 1, and its output does not change."""
    torch.manual_seed(0)
    mixer = build_mixer("mega", 8, chunk_size=4, ema_dim=2).double().eval()
    x = torch.randn(1, 8, 8, dtype=torch.float64)
    x2 = x.clone()
    x2[:, :4] += 1.0
    with torch.no_grad():
        assert not torch.allclose(mixer(x)[:, 4:], mixer(x2)[:, 4:])
        mixer.beta.zero_()
        torch.testing.assert_close(mixer(x)[:, 4:], mixer(x2)[:, 4:])


def test_mega_rejects_bad_config():
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        build_mixer("mega", 8, chunk_size=0)
    with pytest.raises(ValueError, match="ema_dim must be >= 1"):
        build_mixer("mega", 8, ema_dim=0)


def test_ema_kernel_is_s4ds_vandermonde_kernel_with_real_eigenvalues():
    """Part 2's S4D kernel K_l = Σ_n C̃_n exp(l · log Ā_n), with real Ā = 1 − αδ and C̃ = η α β, is the EMA kernel:
    Mega's EMA is S4D with the imaginary parts (the oscillations) removed."""
    from postlib.ssm.s4d import vandermonde_kernel
    alpha, delta, beta, eta = _params(D=3, h=4)
    K = vandermonde_kernel((eta * alpha * beta).to(torch.complex128), torch.log1p(-alpha * delta).to(torch.complex128),
                           40)
    torch.testing.assert_close(K.real, ema_kernel(alpha, delta, beta, eta, 40))
    assert K.imag.abs().max() == 0
