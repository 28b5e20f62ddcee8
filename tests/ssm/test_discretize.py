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


# ------------------------------------------------------------------ the measured order of each rule

from postlib.bench import fit_exponent  # noqa: E402
from postlib.ssm.discretize import discretization_error, exact_response  # noqa: E402

DTS = [0.1, 0.05, 0.025, 0.0125]


def test_exact_response_solves_the_ode():
    A, B = _system(4, 1, seed=3)
    B = B[:, 0]
    t, h = 0.7, 1e-5
    for signal, u in (("step", 1.0), ("sine", np.sin(3.0 * t))):
        x = exact_response(A, B, [t - h, t, t + h], signal)
        np.testing.assert_allclose((x[2] - x[0]) / (2 * h), A @ x[1] + B * u, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(exact_response(A, B, [0.0], signal)[0], 0, atol=1e-14)


@pytest.mark.parametrize("method, order", [("euler", 1), ("backward_euler", 1), ("bilinear", 2)])
def test_step_response_error_has_the_rules_order(method, order):
    A, B = _system(4, 1, seed=0)
    errors = [discretization_error(A, B[:, 0], dt, method) for dt in DTS]
    assert abs(fit_exponent(DTS, errors) - order) < 0.15


def test_zoh_is_exact_for_a_constant_input_and_second_order_only_at_mid_step_samples():
    A, B = _system(4, 1, seed=0)
    assert max(discretization_error(A, B[:, 0], dt, "zoh") for dt in DTS) < 1e-12
    end = [discretization_error(A, B[:, 0], dt, "zoh", signal="sine") for dt in DTS]
    mid = [discretization_error(A, B[:, 0], dt, "zoh", signal="sine", sample="mid") for dt in DTS]
    assert abs(fit_exponent(DTS, end) - 1) < 0.15 and abs(fit_exponent(DTS, mid) - 2) < 0.15


def test_discretization_error_refuses_bad_arguments():
    A, B = _system(2, 1)
    with pytest.raises(ValueError, match="sample must be one of"):
        discretization_error(A, B[:, 0], 0.1, "zoh", sample="start")
    with pytest.raises(ValueError, match="signal must be one of"):
        discretization_error(A, B[:, 0], 0.1, "zoh", signal="square")
    with pytest.raises(ValueError, match="at least one step"):
        discretization_error(A, B[:, 0], 1.0, "zoh", T=0.2)


@pytest.mark.parametrize("signal", ["step", "sine"])
def test_the_grid_shortcut_equals_the_closed_form(signal):
    from postlib.ssm.discretize import _exact_on_grid
    A, B = _system(3, 1, seed=5)
    np.testing.assert_allclose(_exact_on_grid(A, B[:, 0], 0.05, 40, signal, 3.0),
                               exact_response(A, B[:, 0], 0.05 * np.arange(1, 41), signal), rtol=1e-10, atol=1e-13)
