"""HiPPO matrices: the S4 LegS convention, and each kind's state really is the projection of the history."""
import numpy as np
import pytest

from postlib.ssm.hippo import (KINDS, fourier_basis, hippo, hippo_online, laguerre_basis, legendre_basis,
                               memory_curve, random_stable_A, reconstruct, demo_signal)


def test_legs_convention():
    A, B = hippo("legs", 4)
    r = np.sqrt(2 * np.arange(4) + 1)
    assert A.dtype == np.float64 and B.dtype == np.float64
    assert A[2, 0] == pytest.approx(-r[2] * r[0]) and A[3, 1] == pytest.approx(-r[3] * r[1])
    np.testing.assert_allclose(np.diag(A), [-1, -2, -3, -4])
    assert np.all(np.triu(A, 1) == 0)
    np.testing.assert_allclose(B, r)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_and_stability(kind):
    A, B = hippo(kind, 9)
    assert A.shape == (9, 9) and B.shape == (9,)
    assert np.linalg.eigvals(A).real.max() <= 1e-9


def _projection(kind, ts, sig, t, N, dt):
    """The defining integral ∫ f(s) g_n(s) dμ_t(s), by quadrature over the sampled history."""
    if kind == "legs":
        return (legendre_basis(ts / t, N) * sig).sum(1) * dt / t
    if kind == "lagt":
        return (laguerre_basis(t - ts, N) * sig * np.exp(-(t - ts))).sum(1) * dt
    m = ts > t - 1
    basis = legendre_basis if kind == "legt" else fourier_basis
    return (basis(ts[m] - t + 1, N) * sig[m]).sum(1) * dt


@pytest.mark.parametrize("kind", ["legs", "legt", "lagt"])
def test_online_state_is_the_projection_of_the_history(kind):
    N, L = 8, 4000
    dt = 1 / L if kind == "legs" else 1e-3
    ts = (np.arange(L) + 1) * dt
    sig = np.sin(3 * ts) + 0.3 * ts
    c = hippo_online(kind, N, sig, dt)
    proj = _projection(kind, ts, sig, ts[-1], N, dt)
    np.testing.assert_allclose(c[-1], proj, atol=5e-3)


def test_fourier_ode_is_exact_for_a_periodic_band_limited_signal():
    """For f with period 1 and few harmonics the window edge has no jump: dc/dt = Ac + Bf holds exactly."""
    N = 9
    A, B = hippo("fourier", N)
    f = lambda s: np.sin(2 * np.pi * s) + 0.5 * np.cos(4 * np.pi * s + 0.3) + 0.2
    def proj(t, n=40001):
        s = np.linspace(t - 1, t, n)
        return np.trapezoid(fourier_basis(s - t + 1, N) * f(s), s, axis=1)
    t, h = 2.3, 1e-4
    np.testing.assert_allclose((proj(t + h) - proj(t - h)) / (2 * h), A @ proj(t) + B * f(t), atol=1e-5)


@pytest.mark.parametrize("name", ["sines", "chirp"])
def test_legs_reconstruction_improves_with_N(name):
    L = 1000
    sig = demo_signal(name, L)
    errs = []
    for N in (8, 32):
        c = hippo_online("legs", N, sig, 1.0 / L)
        s = np.linspace(0.01, 0.99, 200)
        errs.append(np.sqrt(np.mean((reconstruct("legs", c[-1], 1.0, s) - np.interp(s, np.arange(1, L + 1) / L, sig)) ** 2)))
    assert errs[1] < 0.1 < errs[0] or errs[1] < errs[0] / 3


def test_random_A_forgets_faster_than_hippo():
    N, dt = 16, 0.05                      # LegT's window of 1 time unit = 20 steps
    u = np.random.default_rng(0).standard_normal(3000)
    delays = [1, 5, 10]
    legt = memory_curve(*hippo("legt", N), dt, u, delays)
    rand = memory_curve(*random_stable_A(N), dt, u, delays)
    assert legt[1] > 0.9 and rand[1] < 0.3 and legt[2] > rand[2] + 0.3


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="kind must be one of"):
        hippo("chebyshev", 4)
    with pytest.raises(ValueError, match="N must be >= 1"):
        hippo("legs", 0)
    with pytest.raises(ValueError, match="signal must be a 1-D array"):
        hippo_online("legs", 4, np.zeros((2, 3)), 0.1)


def test_memory_capacity_is_at_most_N_and_hippo_uses_most_of_it():
    from postlib.ssm.hippo import readout_r2, ssm_states
    N, dt = 8, 0.1
    u = np.random.default_rng(1).standard_normal(2000)
    delays = list(range(0, 60))
    legs = np.clip(memory_curve(*hippo("legs", N), dt, u, delays), 0, None).sum()
    rand = np.clip(memory_curve(*random_stable_A(N), dt, u, delays), 0, None).sum()
    assert legs <= N + 0.5 and rand < legs and legs > 0.7 * N
    # out of sample: a state that holds nothing of u scores about 0, not N/L
    noise = np.random.default_rng(2).standard_normal((2000, N))
    assert abs(readout_r2(noise, u, [0, 5]).max()) < 0.02
    assert ssm_states(*hippo("legs", N), dt, u).shape == (2000, N)


def test_reconstruction_error_falls_faster_for_smoother_signals():
    from postlib.ssm.hippo import reconstruction_error
    L = 600
    errors = {name: [reconstruction_error(N, demo_signal(name, L)) for N in (8, 32)]
              for name in ("sines", "triangle", "square")}
    gains = {name: e[0] / e[1] for name, e in errors.items()}
    assert gains["sines"] > gains["triangle"] > gains["square"] > 1


def test_readout_r2_refuses_bad_delays_and_shapes():
    from postlib.ssm.hippo import readout_r2
    with pytest.raises(ValueError, match="every delay"):
        readout_r2(np.zeros((10, 2)), np.zeros(10), [5])
    with pytest.raises(ValueError, match="states must have shape"):
        readout_r2(np.zeros((9, 2)), np.zeros(10), [1])
