"""S4D / DSS: initialisations, Vandermonde kernel ≡ powers of Ā, conv ≡ recurrence."""
import math

import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.ssm.s4d import dss_softmax_kernel, s4d_init, vandermonde_kernel, zoh_diagonal


def test_inits_follow_the_paper():
    lin = s4d_init(8, "lin")
    torch.testing.assert_close(lin, torch.complex(torch.full((4,), -0.5, dtype=torch.float64),
                                                  math.pi * torch.arange(4, dtype=torch.float64)))
    inv = s4d_init(8, "inv")
    n = torch.arange(4, dtype=torch.float64)
    torch.testing.assert_close(inv.imag, 8 / math.pi * (8 / (2 * n + 1) - 1))
    torch.testing.assert_close(s4d_init(3, "real").real, -torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="N must be even"):
        s4d_init(5, "lin")
    with pytest.raises(ValueError, match="kind must be one of"):
        s4d_init(4, "cheb")


@pytest.mark.parametrize("L", [1, 13, 100])
def test_vandermonde_equals_powers(L):
    lam = s4d_init(16, "inv")
    dt = 0.05
    Ad, Bd = zoh_diagonal(lam, dt)
    C = torch.randn(8, dtype=torch.complex128)
    naive = torch.stack([(C * Bd * Ad ** l).sum() for l in range(L)])
    torch.testing.assert_close(vandermonde_kernel(C * Bd, lam * dt, L), naive, rtol=1e-10, atol=1e-12)


def test_dss_softmax_is_normalised_over_positions():
    lam, W = s4d_init(8, "lin"), torch.ones(4, dtype=torch.complex128)
    K = dss_softmax_kernel(W, lam, 0.1, 32)
    assert K.shape == (32,) and torch.isfinite(K).all()


@pytest.mark.parametrize("name,cfg", [("s4d", {"init": "lin"}), ("s4d", {"init": "inv"}), ("s4d", {"init": "real"}),
                                      ("dss", {})])
def test_conv_equals_recurrence(name, cfg):
    torch.manual_seed(0)
    m = build_mixer(name, 6, d_state=8, **cfg).double().eval()
    x = torch.randn(2, 29, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(m, x), m(x), rtol=1e-9, atol=1e-11)
