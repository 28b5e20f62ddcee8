"""The sympy derivation of the stable WKV recurrence is a test: residuals are 0, a recurrence that
forgets the decay leaves a non-zero residual, and the lambdified recurrence equals the library's code."""
import numpy as np
import pytest
import sympy as sp
import torch

from postlib.recurrent import wkv_derive as derive
from postlib.recurrent.wkv import wkv, wkv_definition


def test_the_shift_leaves_the_ratio_unchanged():
    eq, residual = derive.shift_invariance()
    assert isinstance(eq, sp.Eq) and residual == 0


@pytest.mark.parametrize("T", [1, 2, 3])
def test_the_running_maximum_recurrence_computes_the_definition(T):
    assert derive.recurrence_residuals(T) == (0,) * T
    assert derive.state_residual(T) == 0


def test_a_recurrence_without_decay_is_caught():
    residuals = derive.recurrence_residuals(3, decay_in_shift=False)
    assert residuals[:2] == (0, 0) and residuals[2] != 0        # the decay first matters at t = 2


@pytest.mark.parametrize("keys", [[0.3, -1.0, 2.0, 0.5], [100.0, 101.0, 99.0, 100.5], [-50.0, 40.0, -3.0, 7.0]])
def test_the_derivation_matches_the_code(keys):
    w, u = 0.7, -0.4
    v = [1.0, -2.0, 0.5, 3.0]
    sym = derive.unrolled_numeric(w, u, keys, v)
    as_tensor = lambda x: torch.tensor(x, dtype=torch.float64)
    k_t, v_t = as_tensor(keys)[None, :, None], as_tensor(v)[None, :, None]
    for out in (wkv(as_tensor([w]), as_tensor([u]), k_t, v_t, backend="recurrent"),
                wkv(as_tensor([w]), as_tensor([u]), k_t, v_t, backend="parallel"),
                wkv_definition(as_tensor([w]), as_tensor([u]), k_t, v_t)):
        np.testing.assert_allclose(out.flatten().numpy(), sym, rtol=1e-12)


def test_unrolled_numeric_checks_its_input():
    with pytest.raises(ValueError, match="same length in 1..8"):
        derive.unrolled_numeric(0.5, 0.0, [1.0, 2.0], [1.0])
