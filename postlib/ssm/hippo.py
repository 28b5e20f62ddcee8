"""HiPPO: a state that is the best polynomial (or Fourier) summary of the input's history.

HiPPO (Gu et al. 2020) asks: as a signal f arrives, keep coefficients c(t)
of its projection onto an orthonormal basis {g_n} under a measure μ_t over
the past. Differentiating c_n(t) = ∫ f(s) g_n(s) dμ_t(s) gives a linear ODE

    dc/dt = A c + B f(t)        (LegT, LagT, Fourier: time-invariant)
    dc/dt = (1/t) (A c + B f)   (LegS: the measure is uniform on [0, t])

so the state of a linear SSM can *be* a compressed memory. The matrices:

* ``"legs"``  (scaled Legendre, the S4 convention)
      A[n,k] = −√(2n+1)√(2k+1) (n>k), −(n+1) (n=k), 0 (n<k);  B[n] = √(2n+1)
* ``"legt"``  (Legendre on the sliding window [t−1, t]); with R_n = √(2n+1)
      A[n,k] = −R_n R_k (k ≤ n), −(−1)^{n−k} R_n R_k (k > n);  B[n] = R_n
* ``"lagt"``  (Laguerre under the measure e^{−(t−s)}): A = −(lower-triangular ones); B = 1
* ``"fourier"`` (Fourier on the window [t−1, t]): A = −D − 2g(0)g(0)ᵀ, B = 2g(0), where D
  differentiates the basis 1, √2cos 2πkx, √2sin 2πkx and g(0) is the basis at x = 0.

For the translated measures, dc_n/dt = g_n(1) f(t) − g_n(0) f(t−1) − Σ_k D_nk c_k, and the
unknown f(t−1) is replaced by the memory's own reconstruction at the window's edge: Σ_k g_k(0) c_k
for Legendre; for Fourier the series converges to the midpoint of the jump (f(t−1) + f(t))/2 there
(the periodic extension), so f(t−1) ≈ 2 Σ_k g_k(0) c_k − f(t), hence the factors 2.
``tests/ssm/test_hippo.py`` checks every kind by reconstructing signals online.
"""
from __future__ import annotations

import numpy as np
from numpy.polynomial import laguerre, legendre

from .._checks import check_choice, check_positive_int

KINDS = ("legs", "legt", "lagt", "fourier")


def hippo(kind: str, N: int):
    """The HiPPO transition ``(A, B)`` of size N as float64 numpy arrays (A: (N, N), B: (N,))."""
    check_choice(kind, "kind", KINDS)
    check_positive_int(N, "N")
    n = np.arange(N)
    R = np.sqrt(2 * n + 1.0)
    row, col = np.meshgrid(n, n, indexing="ij")
    if kind == "legs":
        A = np.where(row > col, -np.outer(R, R), 0.0) - np.diag(n + 1.0)
        B = R.copy()
    elif kind == "legt":
        sign = np.where(col <= row, 1.0, (-1.0) ** (row - col))
        A = -np.outer(R, R) * sign
        B = R.copy()
    elif kind == "lagt":
        A = -np.tril(np.ones((N, N)))
        B = np.ones(N)
    else:
        g0 = fourier_basis(np.zeros(1), N)[:, 0]
        D = np.zeros((N, N))
        for k in range(1, (N + 1) // 2 + 1):
            c, s = 2 * k - 1, 2 * k
            if s < N:   # d/dx √2 cos = −2πk √2 sin,  d/dx √2 sin = 2πk √2 cos
                D[c, s] = -2 * np.pi * k
                D[s, c] = 2 * np.pi * k
        A = -D - 2 * np.outer(g0, g0)
        B = 2 * g0
    return A.astype(np.float64), B.astype(np.float64)


def legendre_basis(x, N: int) -> np.ndarray:
    """g_n(x) = √(2n+1) P_n(2x − 1) on x ∈ [0, 1], orthonormal for the uniform measure: (N, len(x))."""
    x = np.asarray(x, dtype=float)
    return np.stack([np.sqrt(2 * n + 1) * legendre.legval(2 * x - 1, np.eye(N)[n]) for n in range(N)])


def laguerre_basis(x, N: int) -> np.ndarray:
    """L_n(x) on x ≥ 0, orthonormal for the measure e^{−x}: (N, len(x))."""
    x = np.asarray(x, dtype=float)
    return np.stack([laguerre.lagval(x, np.eye(N)[n]) for n in range(N)])


def fourier_basis(x, N: int) -> np.ndarray:
    """1, √2 cos 2πkx, √2 sin 2πkx, ... on x ∈ [0, 1]: (N, len(x))."""
    x = np.asarray(x, dtype=float)
    rows = [np.ones_like(x)]
    k = 1
    while len(rows) < N:
        rows.append(np.sqrt(2) * np.cos(2 * np.pi * k * x))
        if len(rows) < N:
            rows.append(np.sqrt(2) * np.sin(2 * np.pi * k * x))
        k += 1
    return np.stack(rows)


def hippo_online(kind: str, N: int, signal, dt: float) -> np.ndarray:
    """Run the HiPPO memory over ``signal`` (sampled every ``dt``); return coefficients (L, N).

    Bilinear discretization; for LegS the step is Δ/t with t = k·dt, so the
    update does not depend on dt at all (LegS is timescale invariant):
        c_k = (I − A/(2k))⁻¹ [(I + A/(2k)) c_{k−1} + B f_k / k].
    """
    from scipy.linalg import solve_triangular

    f = np.asarray(signal, dtype=float)
    if f.ndim != 1 or len(f) == 0:
        raise ValueError(f"signal must be a 1-D array of length >= 1, got shape {f.shape}")
    A, B = hippo(kind, N)
    eye = np.eye(N)
    c = np.zeros(N)
    out = np.empty((len(f), N))
    if kind == "legs":
        for k in range(1, len(f) + 1):
            c = solve_triangular(eye - A / (2 * k), (eye + A / (2 * k)) @ c + B * f[k - 1] / k, lower=True)
            out[k - 1] = c
        return out
    from .discretize import discretize
    Ad, Bd = discretize(A, B, dt, "bilinear")
    for k in range(len(f)):
        c = Ad @ c + Bd * f[k]
        out[k] = c
    return out


def reconstruct(kind: str, coeffs, t: float, s) -> np.ndarray:
    """The signal's history rebuilt from coefficients ``coeffs`` (N,) held at time ``t``, at past times ``s``.

    LegS covers [0, t]; LegT and Fourier cover the window [t − 1, t]; LagT covers (−∞, t]
    with weight decaying as e^{−(t−s)}.
    """
    check_choice(kind, "kind", KINDS)
    coeffs = np.asarray(coeffs, dtype=float)
    s = np.asarray(s, dtype=float)
    N = coeffs.shape[-1]
    if kind == "legs":
        G = legendre_basis(s / t, N)
    elif kind == "legt":
        G = legendre_basis(s - t + 1, N)
    elif kind == "fourier":
        G = fourier_basis(s - t + 1, N)
    else:
        G = laguerre_basis(t - s, N)
    return coeffs @ G


def reconstruction_window(kind: str, t: float) -> tuple[float, float]:
    """The span of past times a kind's memory is meant to describe at time t."""
    return {"legs": (0.0, t), "legt": (t - 1, t), "fourier": (t - 1, t), "lagt": (max(0.0, t - 4.0), t)}[kind]


SIGNALS = ("sines", "chirp", "steps", "noise", "triangle", "square")


def demo_signal(name: str, length: int, seed: int = 0) -> np.ndarray:
    """Signals for the reconstruction demos, sampled at x_k = k/length on (0, 1]:

    "sines" and "chirp" (smooth), "triangle" (Lipschitz: continuous, with corners), "square" and
    "steps" (jumps), "noise" (smoothed white noise).
    """
    check_choice(name, "name", SIGNALS)
    check_positive_int(length, "length")
    x = np.linspace(0, 1, length) if name in ("sines", "steps", "chirp", "noise") else np.arange(1, length + 1) / length
    rng = np.random.default_rng(seed)
    if name == "sines":
        return np.sin(2 * np.pi * 3 * x) + 0.5 * np.sin(2 * np.pi * 7 * x + 1)
    if name == "steps":
        return np.repeat(rng.uniform(-1, 1, 8), -(-length // 8))[:length]
    if name == "chirp":
        return np.sin(2 * np.pi * (2 * x + 6 * x ** 2))
    if name == "triangle":      # 3.3 periods of a triangle wave between −1 and 1: Lipschitz with constant 13.2
        return 4 * np.abs((3.3 * x) % 1 - 0.5) - 1
    if name == "square":        # the sign of a sine of the same frequency: jumps, not Lipschitz
        return np.sign(np.sin(2 * np.pi * 3.3 * x))
    kernel = np.exp(-np.linspace(-3, 3, 31) ** 2)
    return np.convolve(rng.standard_normal(length + 30), kernel / kernel.sum() * 4, mode="valid")[:length]


def reconstruction_error(N: int, signal) -> float:
    """RMS error of the whole history rebuilt at the end from the N LegS coefficients run online.

    ``signal`` (L,) is sampled at t_k = k/L; the coefficients come from :func:`hippo_online` (the
    bilinear recurrence, so the error includes its discretization error as well as the projection's).
    """
    f = np.asarray(signal, dtype=float)
    c = hippo_online("legs", N, f, 1.0 / len(f))[-1]
    rebuilt = reconstruct("legs", c, 1.0, np.arange(1, len(f) + 1) / len(f))
    return float(np.sqrt(np.mean((rebuilt - f) ** 2)))


def ssm_states(A, B, dt: float, u) -> np.ndarray:
    """States x_k (L, N) of the bilinear recurrence x_k = Ā x_{k−1} + B̄ u_k driven by ``u`` (L,), x_{−1} = 0."""
    from .discretize import discretize

    u = np.asarray(u, dtype=float)
    Ad, Bd = discretize(np.asarray(A, float), np.asarray(B, float), dt, "bilinear")
    X = np.empty((len(u), len(Bd)))
    x = np.zeros(len(Bd))
    for k, uk in enumerate(u):
        x = Ad @ x + Bd * uk
        X[k] = x
    return X


def readout_r2(states, u, delays, ridge: float = 1e-6) -> np.ndarray:
    """R² of the best linear readout of u_{k−τ} from the state x_k, for each delay τ, *out of sample*.

    A ridge regression is fitted on the first half of the steps and scored on the second half, so a
    state that does not hold the input scores about 0 (an in-sample fit would score N/L by chance).
    """
    X, u = np.asarray(states, dtype=float), np.asarray(u, dtype=float)
    if X.ndim != 2 or len(X) != len(u):
        raise ValueError(f"states must have shape (L, N) with L = len(u) = {len(u)}, got {X.shape}")
    scores = []
    for tau in delays:
        if not 0 <= tau < len(u) // 2:
            raise ValueError(f"every delay must be in [0, len(u)/2) = [0, {len(u) // 2}), got {tau}")
        Xs, ys = X[tau:], u[: len(u) - tau]
        half = len(ys) // 2
        fit_X, fit_y, test_X, test_y = Xs[:half], ys[:half], Xs[half:], ys[half:]
        w = np.linalg.solve(fit_X.T @ fit_X + ridge * half * np.eye(X.shape[1]), fit_X.T @ fit_y)
        scores.append(1 - np.mean((test_y - test_X @ w) ** 2) / test_y.var())
    return np.array(scores)


def memory_curve(A, B, dt: float, u, delays, ridge: float = 1e-6) -> np.ndarray:
    """How well the SSM state remembers: R² of the best linear readout of u_{k−τ} from x_k, per delay τ.

    This is the "random A forgets" experiment: drive x_k = Ā x_{k−1} + B̄ u_k (bilinear) with
    white noise u and score a ridge readout of each delayed input out of sample (:func:`readout_r2`).
    Summed over all delays, the R² is the *memory capacity*, at most N for N states.
    """
    return readout_r2(ssm_states(A, B, dt, u), u, delays, ridge)


def random_stable_A(N: int, seed: int = 0, spectral_shift: float = 0.5):
    """A random Gaussian transition, shifted so every eigenvalue has real part ≤ −spectral_shift."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((N, N)) / np.sqrt(N)
    A = A - (np.linalg.eigvals(A).real.max() + spectral_shift) * np.eye(N)
    return A, rng.standard_normal(N)
