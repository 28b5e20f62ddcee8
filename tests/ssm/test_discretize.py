"""discretize ≡ scipy.signal.cont2discrete, ≡ the sympy derivations; eigenvalue maps."""
import numpy as np
import pytest
import sympy as sp
import torch
from scipy.signal import cont2discrete

from postlib.ssm import derive_discretization, discrete_eigenvalue, discretize

SCIPY_NAME = {"zoh": "zoh", "bilinear": "bilinear", "euler": "euler", "backward_euler": "backward_diff"}


def _system(n=5, m=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)) - 2 * np.eye(n), rng.standard_normal((n, m))


@pytest.mark.parametrize("method", list(SCIPY_NAME))
@pytest.mark.parametrize("dt", [1e-3, 0.1, 0.7])
def test_matches_scipy(method, dt):
    A, B = _system()
    Ad, Bd, *_ = cont2discrete((A, B, np.eye(5), np.zeros((5, 2))), dt, method=SCIPY_NAME[method])
    ours_A, ours_B = discretize(A, B, dt, method)
    assert isinstance(ours_A, np.ndarray)
    np.testing.assert_allclose(ours_A, Ad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_B, Bd, rtol=1e-10, atol=1e-12)
    tA, tB = discretize(torch.tensor(A), torch.tensor(B), dt, method)
    assert isinstance(tA, torch.Tensor) and tA.dtype == torch.float64
    np.testing.assert_allclose(tA.numpy(), Ad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tB.numpy(), Bd, rtol=1e-10, atol=1e-12)


def test_zoh_handles_a_singular_A():
    A = np.array([[0.0, 1.0], [0.0, 0.0]])          # double integrator: A⁻¹ does not exist
    Ad, Bd = discretize(A, np.array([0.0, 1.0]), 0.5, "zoh")
    np.testing.assert_allclose(Ad, [[1, 0.5], [0, 1]])
    np.testing.assert_allclose(Bd, [0.125, 0.5])


@pytest.mark.parametrize("method", list(SCIPY_NAME))
def test_sympy_derivation_agrees(method):
    Abar, Bbar, (a, b, dt) = derive_discretization(method)
    for a_val, b_val, dt_val in [(-0.7, 1.3, 0.1), (-3.0, 0.5, 0.9), (0.4, -2.0, 0.05)]:
        subs = {a: a_val, b: b_val, dt: dt_val}
        Ad, Bd = discretize(np.array([[a_val]]), np.array([b_val]), dt_val, method)
        assert float(sp.N(Abar.subs(subs))) == pytest.approx(Ad[0, 0], rel=1e-12)
        assert float(sp.N(Bbar.subs(subs))) == pytest.approx(Bd[0], rel=1e-12)
        assert complex(discrete_eigenvalue(a_val, dt_val, method)) == pytest.approx(Ad[0, 0], rel=1e-12)


def test_stability_maps():
    """ZOH, bilinear and backward Euler send the left half-plane into the unit disk; Euler does not."""
    lam = -0.1 + 1j * np.linspace(-50, 50, 101)
    for method in ("zoh", "bilinear", "backward_euler"):
        assert np.all(np.abs(discrete_eigenvalue(lam, 0.5, method)) < 1)
    assert np.any(np.abs(discrete_eigenvalue(lam, 0.5, "euler")) > 1)


def test_errors_name_the_argument():
    A, B = _system()
    with pytest.raises(ValueError, match="method must be one of"):
        discretize(A, B, 0.1, "rk4")
    with pytest.raises(ValueError, match=r"A must be a square matrix of shape \(N, N\)"):
        discretize(A[:, :3], B, 0.1)
    with pytest.raises(ValueError, match=r"B must have shape \(N,\) or \(N, M\)"):
        discretize(A, B[:3], 0.1)
    with pytest.raises(ValueError, match="dt must be > 0"):
        discretize(A, B, 0.0)
    with pytest.raises(TypeError, match="A and B must both be numpy arrays or both torch tensors"):
        discretize(torch.tensor(A), B, 0.1)
