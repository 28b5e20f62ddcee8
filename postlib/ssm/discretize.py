"""From the continuous system dx/dt = A x + B u to the recurrence x_k = Ā x_{k-1} + B̄ u_k.

Four rules, each a different way to integrate the ODE over one step Δ:

* ``"zoh"`` (zero-order hold: u constant over the step, solved exactly)
      Ā = exp(ΔA),            B̄ = A⁻¹(exp(ΔA) − I) B
* ``"bilinear"`` (trapezoid rule, Tustin; used by HiPPO and S4)
      Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A),   B̄ = (I − Δ/2 A)⁻¹ Δ B
* ``"euler"`` (forward Euler)          Ā = I + ΔA,          B̄ = ΔB
* ``"backward_euler"`` (implicit Euler; scipy's ``backward_diff``)
      Ā = (I − ΔA)⁻¹,                 B̄ = (I − ΔA)⁻¹ Δ B

``discretize`` equals ``scipy.signal.cont2discrete`` (tests/ssm/test_discretize.py)
and the symbolic derivations of :func:`derive_discretization` evaluated at numbers
(same test file).
"""
from __future__ import annotations

import numpy as np
import torch

from .._checks import check_number

METHODS = ("zoh", "bilinear", "euler", "backward_euler")


def _as_matrix_pair(A, B, dt):
    is_torch = isinstance(A, torch.Tensor)
    if is_torch != isinstance(B, torch.Tensor):
        raise TypeError(f"A and B must both be numpy arrays or both torch tensors, got {type(A).__name__} "
                        f"and {type(B).__name__}")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix of shape (N, N), got shape {tuple(A.shape)}")
    if B.ndim not in (1, 2) or B.shape[0] != A.shape[0]:
        raise ValueError(f"B must have shape (N,) or (N, M) with N={A.shape[0]}, got shape {tuple(B.shape)}")
    return is_torch, check_number(dt, "dt", positive=True)


def discretize(A, B, dt: float, method: str = "zoh"):
    """Discretize (A, B) with step ``dt``; numpy in → numpy out, torch in → torch out.

    A: (N, N); B: (N,) or (N, M); dt a finite number > 0. Returns (Ā, B̄) with the shapes of (A, B).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    is_torch, dt = _as_matrix_pair(A, B, dt)
    vec = B.ndim == 1
    Bm = B[:, None] if vec else B
    n = A.shape[0]
    if is_torch:
        eye = torch.eye(n, dtype=A.dtype, device=A.device)
        expm, solve = torch.linalg.matrix_exp, torch.linalg.solve
        Bm = Bm.to(A.dtype)
    else:
        from scipy.linalg import expm as _expm
        A = np.asarray(A, dtype=np.result_type(A, float))
        Bm = np.asarray(Bm, dtype=A.dtype)
        eye, expm, solve = np.eye(n, dtype=A.dtype), _expm, np.linalg.solve
    if method == "zoh":
        # exp([[A, B], [0, 0]] Δ) = [[Ā, B̄], [0, I]]: exact even when A is singular.
        m = Bm.shape[1]
        if is_torch:
            block = torch.zeros(n + m, n + m, dtype=A.dtype, device=A.device)
        else:
            block = np.zeros((n + m, n + m), dtype=A.dtype)
        block[:n, :n] = A * dt
        block[:n, n:] = Bm * dt
        E = expm(block)
        Ad, Bd = E[:n, :n], E[:n, n:]
    elif method == "bilinear":
        Ad = solve(eye - dt / 2 * A, eye + dt / 2 * A)
        Bd = solve(eye - dt / 2 * A, dt * Bm)
    elif method == "euler":
        Ad, Bd = eye + dt * A, dt * Bm
    else:
        Ad = solve(eye - dt * A, eye)
        Bd = solve(eye - dt * A, dt * Bm)
    return Ad, (Bd[:, 0] if vec else Bd)


def discrete_eigenvalue(lam, dt, method: str):
    """Where each rule sends a continuous eigenvalue λ (complex array): the scalar case of ``discretize``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    z = np.asarray(lam, dtype=complex) * check_number(dt, "dt", positive=True)
    if method == "zoh":
        return np.exp(z)
    if method == "bilinear":
        return (1 + z / 2) / (1 - z / 2)
    if method == "euler":
        return 1 + z
    return 1 / (1 - z)


def derive_discretization(method: str):
    """Derive (Ā, B̄) symbolically for the scalar system dx/dt = a x + b u over one step Δ.

    Returns ``(Abar, Bbar, symbols)`` with sympy expressions in ``symbols = (a, b, Δ)``.
    The matrix rules are the same algebra with 1/(…) read as a matrix inverse.
    """
    import sympy as sp

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    a, b, dt, s, x0, x1, u = sp.symbols("a b Delta s x_0 x_1 u")
    if method == "zoh":
        # Variation of constants with u held constant on [0, Δ]:
        # x(Δ) = e^{aΔ} x0 + ∫_0^Δ e^{a(Δ - s)} b u ds.
        x_end = sp.exp(a * dt) * x0 + sp.integrate(sp.exp(a * (dt - s)) * b * u, (s, 0, dt), conds="none")
    else:
        # One step of a quadrature of x1 - x0 = ∫ (a x + b u) dt, solved for x1.
        rhs = {"euler": dt * (a * x0 + b * u),
               "backward_euler": dt * (a * x1 + b * u),
               "bilinear": dt * (a * (x0 + x1) / 2 + b * u)}[method]
        x_end = sp.solve(sp.Eq(x1 - x0, rhs), x1)[0]
    x_end = sp.expand(x_end)
    Abar = sp.simplify(x_end.coeff(x0))
    Bbar = sp.simplify(x_end.coeff(u))
    return Abar, Bbar, (a, b, dt)


INPUTS = ("step", "sine")
SAMPLES = ("end", "mid")


def exact_response(A, B, times, signal: str = "step", omega: float = 3.0) -> np.ndarray:
    """The exact state x(t) of dx/dt = A x + B u(t), x(0) = 0, at ``times`` (T,) → (T, N), in closed form.

    ``"step"``: u ≡ 1, x(t) = A⁻¹(e^{At} − I)B (A invertible).
    ``"sine"``: u = sin(ωt), x(t) = Im[(iωI − A)⁻¹B e^{iωt} − e^{At}(iωI − A)⁻¹B]
    (the complex input e^{iωt} has the particular solution (iωI − A)⁻¹B e^{iωt}; subtract
    e^{At} times its value at 0 so that x(0) = 0).
    """
    from scipy.linalg import expm

    if signal not in INPUTS:
        raise ValueError(f"signal must be one of {list(INPUTS)}, got {signal!r}")
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float).reshape(-1)
    times = np.asarray(times, dtype=float)
    n = A.shape[0]
    if signal == "step":
        if abs(np.linalg.det(A)) < 1e-12:
            raise ValueError("the step response's closed form needs an invertible A")
        return np.stack([np.linalg.solve(A, (expm(A * t) - np.eye(n)) @ B) for t in times])
    check_number(omega, "omega", positive=True)
    z0 = np.linalg.solve(1j * omega * np.eye(n) - A, B.astype(complex))
    return np.stack([(z0 * np.exp(1j * omega * t) - expm(A * t) @ z0).imag for t in times])


def _exact_on_grid(A, B, dt, steps, signal, omega):
    """:func:`exact_response` at t_k = kΔ, k = 1..steps, with one matrix exponential: e^{A t_k} = (e^{AΔ})^k."""
    from scipy.linalg import expm

    if signal not in INPUTS:
        raise ValueError(f"signal must be one of {list(INPUTS)}, got {signal!r}")
    n = A.shape[0]
    step = expm(A * dt)
    powers = np.empty((steps, n, n))
    current = np.eye(n)
    for k in range(steps):
        current = step @ current
        powers[k] = current
    if signal == "step":
        if abs(np.linalg.det(A)) < 1e-12:
            raise ValueError("the step response's closed form needs an invertible A")
        return np.linalg.solve(A, ((powers - np.eye(n)) @ B).T).T
    check_number(omega, "omega", positive=True)
    z0 = np.linalg.solve(1j * omega * np.eye(n) - A, B.astype(complex))
    t = dt * np.arange(1, steps + 1)
    return (z0[None, :] * np.exp(1j * omega * t)[:, None] - powers @ z0).imag


def discretization_error(A, B, dt: float, method: str, *, T: float = 2.0, signal: str = "step",
                         omega: float = 3.0, sample: str = "end") -> float:
    """How far the recurrence x_k = Ā x_{k−1} + B̄ u_k drifts from the ODE's exact solution over [0, T].

    Returns max_k |x_k − x(kΔ)|∞ / max_k |x(kΔ)|∞ over the grid t_k = kΔ ≤ T. The input sample
    u_k is u(kΔ), the end of step k, as in every SSM of this chapter (``sample="end"``), or u at the
    middle of the step, u((k − ½)Δ) (``sample="mid"``). Fitting this error against Δ on log-log axes
    measures each rule's order (tests/ssm/test_discretize.py).
    """
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {list(SAMPLES)}, got {sample!r}")
    dt = check_number(dt, "dt", positive=True)
    steps = int(round(check_number(T, "T", positive=True) / dt))
    if steps < 1:
        raise ValueError(f"T = {T} must hold at least one step of dt = {dt}")
    Ad, Bd = discretize(np.asarray(A, dtype=float), np.asarray(B, dtype=float).reshape(-1), dt, method)
    times = dt * np.arange(1, steps + 1)
    exact = _exact_on_grid(np.asarray(A, dtype=float), np.asarray(B, dtype=float).reshape(-1), dt, steps, signal,
                           omega)
    at = times if sample == "end" else times - dt / 2
    u = np.ones(steps) if signal == "step" else np.sin(omega * at)
    x = np.zeros(len(Bd))
    worst = 0.0
    for k in range(steps):
        x = Ad @ x + Bd * u[k]
        worst = max(worst, float(np.abs(x - exact[k]).max()))
    return worst / float(np.abs(exact).max())
