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
