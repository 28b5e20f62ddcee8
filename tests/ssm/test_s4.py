"""S4: the NPLR form rebuilds HiPPO-LegS; Cauchy + Woodbury kernel ≡ powers of Ā; convolution ≡ recurrence."""
import numpy as np
import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.ssm.conv import direct_causal_conv, fft_causal_conv
from postlib.ssm.hippo import hippo
from postlib.ssm.s4 import bilinear_dense, cauchy, nplr_legs, s4_kernel, s4_kernel_naive


@pytest.mark.parametrize("N", [1, 4, 16, 33])
def test_nplr_rebuilds_legs(N):
    Lambda, P, B, V = nplr_legs(N)
    A, b = hippo("legs", N)
    np.testing.assert_allclose(V @ (np.diag(Lambda) - np.outer(P, P.conj())) @ V.conj().T, A, atol=1e-10)
    np.testing.assert_allclose(V @ B, b, atol=1e-10)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-10)       # unitary: a stable change of basis
    np.testing.assert_allclose(Lambda.real, -0.5)


def _ssm(H=3, N=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    Lambda, P, B, _ = (torch.tensor(a) for a in nplr_legs(N))
    C = torch.randn(H, N, dtype=torch.complex128, generator=g)
    dt = torch.tensor([0.3, 0.01, 0.1], dtype=torch.float64)[:H]
    return Lambda.repeat(H, 1), P.repeat(H, 1), B.repeat(H, 1), C, dt


@pytest.mark.parametrize("L", [1, 2, 7, 13, 64, 100])
def test_cauchy_kernel_equals_naive_kernel(L):
    Lambda, P, B, C, dt = _ssm()
    Ad, Bd = bilinear_dense(Lambda, P, B, dt)
    torch.testing.assert_close(s4_kernel(Lambda, P, B, C, dt, L), s4_kernel_naive(Ad, Bd, C, L), rtol=1e-9, atol=1e-11)


def test_cauchy_is_the_sum():
    v, lam = torch.randn(4, dtype=torch.complex128), torch.randn(4, dtype=torch.complex128)
    g = torch.randn(3, dtype=torch.complex128)
    expected = torch.stack([sum(v[n] / (g[j] - lam[n]) for n in range(4)) for j in range(3)])
    torch.testing.assert_close(cauchy(v, g, lam), expected)


def test_cauchy_takes_per_channel_nodes():
    """S4's kernel evaluates the Cauchy sums at nodes g (channels, L) that depend on each channel's Δ."""
    v, lam = torch.randn(2, 4, dtype=torch.complex128), torch.randn(2, 4, dtype=torch.complex128)
    g = torch.randn(2, 3, dtype=torch.complex128)
    expected = torch.stack([cauchy(v[h], g[h], lam[h]) for h in range(2)])
    torch.testing.assert_close(cauchy(v, g, lam), expected)


@pytest.mark.parametrize("L", [1, 17, 64])
def test_fft_conv_equals_direct_sum(L):
    u, K = torch.randn(2, 3, L, dtype=torch.float64), torch.randn(3, L, dtype=torch.float64)
    torch.testing.assert_close(fft_causal_conv(u, K), direct_causal_conv(u, K))


def test_convolution_equals_recurrence_in_the_mixer():
    torch.manual_seed(0)
    m = build_mixer("s4", 8, d_state=8).double().eval()
    x = torch.randn(2, 37, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(m, x), m(x), rtol=1e-8, atol=1e-10)


def test_s4_mixer_trains():
    torch.manual_seed(0)
    m = build_mixer("s4", 8, d_state=4)
    m(torch.randn(2, 16, 8)).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_s4_without_the_low_rank_term_is_the_diagonal_system():
    torch.manual_seed(0)
    full, diag = build_mixer("s4", 4, d_state=8).double(), build_mixer("s4", 4, d_state=8, low_rank=False).double()
    assert "P" in dict(full.named_parameters()) and "P" not in dict(diag.named_parameters())
    Lambda, P, B, C = diag._ssm()
    assert torch.count_nonzero(P) == 0
    Ad, Bd = bilinear_dense(Lambda, P, B, diag.dt().double())
    torch.testing.assert_close(Ad, torch.diag_embed(torch.diagonal(Ad, dim1=-2, dim2=-1)))   # Ā is diagonal
    x = torch.randn(2, 23, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(diag.eval(), x), diag(x))
