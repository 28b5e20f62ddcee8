"""Retention: every backend ≡ the loop over the definition (fp64) at length 1, a prime and 4096; gradients; errors."""
import math

import pytest
import torch

from postlib.recurrent.retention import (decay_matrix, forgetting_curve, half_life, retention, retention_chunkwise,
                                         retention_parallel, retention_recurrent, retention_reference,
                                         retention_states, retnet_gammas)
from postlib.testing import assert_rel_rms


def _qkv(L, B=2, H=3, D=8, Dv=5, seed=0):
    g = torch.Generator().manual_seed(seed * 7919 + L)
    # q, k scaled by D^(-1/4) each, as a mixer's 1/√d would: keeps the long sums in a sane range
    q, k = (torch.randn(B, H, L, D, generator=g, dtype=torch.float64) * D ** -0.25 for _ in range(2))
    return q, k, torch.randn(B, H, L, Dv, generator=g, dtype=torch.float64)


def _gamma(H):
    return retnet_gammas(H, torch.float64)


@pytest.mark.parametrize("L", [1, 61])
@pytest.mark.parametrize("backend", ["parallel", "recurrent", "chunkwise"])
def test_backends_equal_the_loop(L, backend):
    q, k, v = _qkv(L)
    ref = retention_reference(q, k, v, _gamma(3))
    assert_rel_rms(ref, retention(q, k, v, _gamma(3), backend=backend, chunk_size=16), 1e-12, backend)


def test_backends_equal_the_loop_at_4096():
    q, k, v = _qkv(4096, B=1, H=2, D=8, Dv=4)
    gamma = torch.tensor([0.9, 0.999], dtype=torch.float64)          # one short memory, one longer than a chunk
    ref = retention_reference(q, k, v, gamma)
    assert_rel_rms(ref, retention(q, k, v, gamma, backend="chunkwise"), 1e-12, "chunkwise")
    assert_rel_rms(ref, retention(q, k, v, gamma, backend="recurrent"), 1e-12, "recurrent")
    one = slice(1, 2)                                                # the parallel form: 128 MiB per head in fp64
    assert_rel_rms(ref[:, one], retention(q[:, one], k[:, one], v[:, one], gamma[one], backend="parallel"), 1e-12)


def test_auto_is_chunkwise_on_cpu_and_chunk_size_is_free():
    q, k, v = _qkv(50)
    ref = retention(q, k, v, _gamma(3), backend="parallel")
    for C in (1, 7, 64, 100):
        assert_rel_rms(ref, retention(q, k, v, _gamma(3), chunk_size=C), 1e-12)


def test_streaming_state_continues_the_sequence():
    q, k, v = _qkv(40)
    whole = retention_parallel(q, k, v, _gamma(3))
    first, S = retention_chunkwise(q[:, :, :23], k[:, :, :23], v[:, :, :23], _gamma(3), chunk_size=8, return_state=True)
    second = retention_recurrent(q[:, :, 23:], k[:, :, 23:], v[:, :, 23:], _gamma(3), initial_state=S)
    assert_rel_rms(whole, torch.cat([first, second], dim=2), 1e-12)


@pytest.mark.parametrize("backend", ["parallel", "recurrent", "chunkwise"])
def test_gradcheck(backend):
    q, k, v = (t.detach().requires_grad_(True) for t in _qkv(9, B=1, H=2, D=3, Dv=2))
    gamma = torch.tensor([0.5, 0.8], dtype=torch.float64, requires_grad=True)
    fn = lambda q, k, v, g: retention(q, k, v, g, backend=backend, chunk_size=4)
    assert torch.autograd.gradcheck(fn, (q, k, v, gamma))


def test_decay_matrix_forgetting_curve_and_gammas():
    gamma = torch.tensor([0.5, 0.9], dtype=torch.float64)
    D = decay_matrix(gamma, 5)
    for h, g in enumerate(gamma.tolist()):
        for t in range(5):
            for s in range(5):
                assert D[h, t, s].item() == pytest.approx(g ** (t - s) if t >= s else 0.0, abs=0, rel=1e-14)
    torch.testing.assert_close(forgetting_curve(gamma, 5), D[:, -1].flip(-1))
    assert half_life(gamma)[0].item() == pytest.approx(1.0)
    assert gamma[1].item() ** half_life(gamma)[1].item() == pytest.approx(0.5)
    torch.testing.assert_close(retnet_gammas(4, torch.float64),
                               torch.tensor([1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256], dtype=torch.float64))


def test_state_trajectory_is_the_recurrent_state():
    q, k, v = _qkv(12, B=1, H=1)
    _, S = retention_recurrent(q, k, v, torch.tensor([0.7], dtype=torch.float64), return_state=True)
    states = retention_states(k[0, 0], v[0, 0], 0.7)
    assert states.shape == (12, 8, 5)
    torch.testing.assert_close(states[-1], S[0, 0])
    # o_t = q_t S_t at every t
    out = retention_reference(q, k, v, torch.tensor([0.7], dtype=torch.float64))[0, 0]
    torch.testing.assert_close(torch.einsum("td,tdv->tv", q[0, 0], states), out)


def test_parallel_form_is_exactly_the_masked_product():
    """(QKᵀ ⊙ D)V with D from the decay matrix — Eq. 5 written out."""
    q, k, v = _qkv(6, B=1, H=1)
    gamma = torch.tensor([0.6], dtype=torch.float64)
    scores = q[0, 0] @ k[0, 0].T
    manual = torch.zeros(6, 5, dtype=torch.float64)
    for t in range(6):
        for s in range(t + 1):
            manual[t] += 0.6 ** (t - s) * scores[t, s] * v[0, 0, s]
    torch.testing.assert_close(retention_parallel(q, k, v, gamma)[0, 0], manual)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.2, math.nan])
def test_gamma_outside_the_open_interval_is_rejected(bad):
    q, k, v = _qkv(4)
    gamma = torch.tensor([0.5, bad, 0.9], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"gamma must lie strictly inside \(0, 1\)"):
        retention(q, k, v, gamma)


def test_errors_name_the_argument():
    q, k, v = _qkv(6)
    with pytest.raises(ValueError, match=r"gamma must have shape \(heads,\) = \(3,\)"):
        retention(q, k, v, _gamma(2))
    with pytest.raises(ValueError, match="gamma must have 1 dimensions"):
        retention(q, k, v, _gamma(3)[None])
    with pytest.raises(TypeError, match="gamma must be a torch.Tensor"):
        retention(q, k, v, [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="q and k must have the same length"):
        retention(q, k[:, :, :4], v[:, :, :4], _gamma(3))
    with pytest.raises(ValueError, match="v must have the same length as k"):
        retention(q, k, v[:, :, :4], _gamma(3))
    with pytest.raises(ValueError, match=r"k must have head_dim 8"):
        retention(q, k[..., :4], v, _gamma(3))
    with pytest.raises(ValueError, match="backend must be one of"):
        retention(q, k, v, _gamma(3), backend="fft")
    bad = k.clone()
    bad[0, 0, 3, 0] = float("inf")
    with pytest.raises(ValueError, match=r"k must be finite, but k\[0, 0, 3, 0\] = inf"):
        retention(q, bad, v, _gamma(3), backend="recurrent")
