"""The derivations behind S4's kernel (Gu, Goel & Ré 2022, §3.2–3.3), done by a computer algebra system.

The kernel of the recurrence x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k is K_k = C Ā^k B̄ (k < L). S4
never forms the powers: it evaluates the kernel's *generating function* at the L roots of unity
and inverts an FFT. Three identities make that exact and cheap; sympy checks each by simplifying
the difference of both sides to 0.

1. **The truncated geometric sum.** Σ_{k<L} Ā^k z^k (I − Āz) = I − Ā^L z^L, so
   K̂(z) = Σ_{k<L} K_k z^k = C (I − Ā^L z^L)(I − Āz)⁻¹ B̄. At a root of unity z^L = 1, hence
   K̂(z_j) = C̃ (I − Āz_j)⁻¹ B̄ with **C̃ = C (I − Ā^L)**: the truncation at L moves into C.
   (:func:`geometric_sum_residual`; for matrices with :func:`matrix_geometric_sum_residual`.)
2. **The bilinear resolvent.** With Ā = (I − Δ/2 A)⁻¹(I + Δ/2 A) and B̄ = (I − Δ/2 A)⁻¹ Δ B,
   (I − Āz)⁻¹ B̄ = 2/(1 + z) · (g(z) I − A)⁻¹ B with g(z) = (2/Δ)(1 − z)/(1 + z): the discrete
   resolvent is the *continuous* one at a warped frequency (:func:`bilinear_resolvent_residual`).
   This is the one place where the continuous A legitimately appears beside z.
3. **Woodbury.** For A = Λ − P Q* (diagonal plus rank one),
   (gI − Λ + PQ*)⁻¹ = R − R P (1 + Q* R P)⁻¹ Q* R with R = diag(1/(g − λ_n)): only diagonal
   inverses, i.e. Cauchy sums Σ_n a_n b_n / (g − λ_n) (:func:`woodbury_residual`).

:func:`scalar_kernel_numeric` lambdifies the composed result for one state (N = 1, no low-rank
term); ``tests/ssm/test_derive.py`` checks it, and the identities numerically, against
``postlib.ssm.s4.s4_kernel`` and ``s4_kernel_naive``, so the derivation is a test.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .._checks import check_positive_int

A_, B_, C_, Z, DT, G = sp.symbols("a b c z Delta g")
ABAR = sp.Symbol(r"\bar a")


def bilinear_scalar(a=A_, b=B_, dt=DT) -> tuple[sp.Expr, sp.Expr]:
    """(ā, b̄) of the bilinear rule for the scalar system dx/dt = a x + b u."""
    return (1 + dt * a / 2) / (1 - dt * a / 2), dt * b / (1 - dt * a / 2)


def warped_frequency(z=Z, dt=DT) -> sp.Expr:
    """g(z) = (2/Δ)(1 − z)/(1 + z): the continuous frequency the bilinear rule maps z to."""
    return 2 / dt * (1 - z) / (1 + z)


def geometric_sum_residual(L: int) -> sp.Expr:
    """(Σ_{k<L} ā^k z^k)(1 − ā z) − (1 − ā^L z^L), simplified: 0 for every L."""
    check_positive_int(L, "L")
    total = sum(ABAR ** k * Z ** k for k in range(L))
    return sp.expand(total * (1 - ABAR * Z) - (1 - ABAR ** L * Z ** L))


def matrix_geometric_sum_residual(L: int, n: int = 2) -> sp.Matrix:
    """The same identity for a generic symbolic n×n matrix M: (Σ_{k<L} M^k z^k)(I − Mz) − (I − M^L z^L)."""
    check_positive_int(L, "L")
    check_positive_int(n, "n")
    M = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"m_{i}{j}"))
    eye = sp.eye(n)
    total = sp.zeros(n, n)
    power = eye
    for k in range(L):
        total += power * Z ** k
        power = power * M
    return (total * (eye - M * Z) - (eye - power * Z ** L)).applyfunc(sp.expand)


def bilinear_resolvent_residual() -> sp.Expr:
    """b̄ / (1 − ā z) − 2/(1 + z) · b / (g(z) − a), simplified: 0."""
    abar, bbar = bilinear_scalar()
    return sp.simplify(bbar / (1 - abar * Z) - 2 / (1 + Z) * B_ / (warped_frequency() - A_))


def woodbury_residual(n: int = 2) -> sp.Matrix:
    """(gI − Λ + pqᵀ)⁻¹ − [R − R p (1 + qᵀRp)⁻¹ qᵀ R], R = diag(1/(g − λ)), for symbolic n×n: a zero matrix."""
    check_positive_int(n, "n")
    lam = sp.symbols(f"lambda_1:{n + 1}")
    p = sp.Matrix(sp.symbols(f"p_1:{n + 1}"))
    q = sp.Matrix(sp.symbols(f"q_1:{n + 1}"))
    R = sp.diag(*[1 / (G - l) for l in lam])
    lhs = (G * sp.eye(n) - sp.diag(*lam) + p * q.T).inv()
    rhs = R - R * p * q.T * R / (1 + (q.T * R * p)[0])
    return (lhs - rhs).applyfunc(sp.simplify)


def generating_function_equations() -> list[sp.Eq]:
    """The chain of equalities the chapter displays, for one state (matrices read the same way)."""
    k, L = sp.symbols("k L", integer=True, nonnegative=True)
    K_hat = sp.Function(r"\hat K")(Z)
    abar, bbar, ctilde, zj = sp.Symbol(r"\bar a"), sp.Symbol(r"\bar b"), sp.Symbol(r"\tilde c"), sp.Symbol("z_j")
    truncated = sp.Sum(C_ * abar ** k * bbar * Z ** k, (k, 0, L - 1))
    closed = C_ * (1 - abar ** L * Z ** L) * bbar / (1 - abar * Z)
    return [sp.Eq(K_hat, truncated), sp.Eq(truncated, closed, evaluate=False),
            sp.Eq(sp.Function(r"\hat K")(zj), ctilde * bbar / (1 - abar * zj), evaluate=False),
            sp.Eq(ctilde, C_ * (1 - abar ** L), evaluate=False)]


@lru_cache(maxsize=None)
def _scalar_kernel_hat(L: int):
    abar, bbar = bilinear_scalar()
    c_tilde = C_ * (1 - abar ** L)
    K_hat = c_tilde * 2 / (1 + Z) * B_ / (warped_frequency() - A_)      # identities 1 and 2 composed
    return sp.lambdify((A_, B_, C_, DT, Z), K_hat, "numpy")


def scalar_kernel_numeric(a: complex, b: complex, c: complex, dt: float, L: int) -> np.ndarray:
    """K (L,) of one bilinear state from the derived closed form: K̂ at the L roots of unity, then an inverse FFT.

    Odd ``L`` only: for even L the root z = −1 sits on the pole of 2/(1 + z) (``s4_kernel`` takes the
    limit there; this numeric twin of the derivation stays with the formula as written).
    """
    check_positive_int(L, "L")
    if L % 2 == 0:
        raise ValueError(f"L must be odd (z = -1 is a root of unity for even L), got {L}")
    z = np.exp(-2j * np.pi * np.arange(L) / L)
    return np.fft.ifft(_scalar_kernel_hat(L)(a, b, c, dt, z))
