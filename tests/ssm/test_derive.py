"""The S4 kernel's derivation (postlib.ssm.derive): every identity simplifies to 0, and the derived
closed form equals the numeric kernels of postlib.ssm.s4."""
import numpy as np
import pytest
import sympy as sp
import torch

from postlib.ssm import derive
from postlib.ssm.s4 import bilinear_dense, s4_kernel, s4_kernel_naive


@pytest.mark.parametrize("L", [1, 2, 7])
def test_truncated_geometric_sum(L):
    assert derive.geometric_sum_residual(L) == 0
    assert derive.matrix_geometric_sum_residual(L, 2) == sp.zeros(2, 2)


def test_bilinear_resolvent_and_woodbury():
    assert derive.bilinear_resolvent_residual() == 0
    assert derive.woodbury_residual(2) == sp.zeros(2, 2)


def test_displayed_equations_render():
    equations = derive.generating_function_equations()
    assert len(equations) == 4 and all(sp.latex(e) for e in equations)


@pytest.mark.parametrize("L", [1, 7, 13])
def test_derived_kernel_equals_the_numeric_kernels(L):
    a, b, c, dt = -0.3 + 2j, 0.7 - 0.1j, 1.1 + 0.4j, 0.1
    derived = derive.scalar_kernel_numeric(a, b, c, dt, L)
    one = lambda x: torch.tensor([x], dtype=torch.complex128)
    Ad, Bd = bilinear_dense(one(a), one(0), one(b), dt)
    naive = s4_kernel_naive(Ad, Bd, one(c), L).numpy()
    fast = s4_kernel(one(a), one(0), one(b), one(c), dt, L).numpy()
    np.testing.assert_allclose(derived, naive, atol=1e-13)
    np.testing.assert_allclose(derived, fast, atol=1e-13)


def test_woodbury_numerically_against_a_dense_solve():
    g = torch.Generator().manual_seed(0)
    N = 6
    c = lambda: torch.complex(torch.randn(N, generator=g, dtype=torch.float64), torch.randn(N, generator=g, dtype=torch.float64))
    lam, p, q, b = c(), c(), c(), c()
    z = 0.4 + 1.1j
    R = 1 / (z - lam)
    x = R * b - R * p * (q.conj() @ (R * b)) / (1 + q.conj() @ (R * p))
    M = z * torch.eye(N, dtype=torch.complex128) - torch.diag(lam) + p[:, None] * q.conj()[None, :]
    torch.testing.assert_close(M @ x, b)


def test_scalar_kernel_numeric_refuses_even_lengths():
    with pytest.raises(ValueError, match="L must be odd"):
        derive.scalar_kernel_numeric(-1.0, 1.0, 1.0, 0.1, 8)
