"""The one interface: every registered mixer obeys the same protocol.

These tests run over ``list_mixers()``, so a mixer registered by any later
chapter is checked here automatically.
"""
import pytest
import torch

import postlib
from postlib import build_mixer, list_mixers, run_steps

D_MODEL = 32


def _small(name):
    torch.manual_seed(0)
    return build_mixer(name, D_MODEL).double().eval()


def test_registry_lists_the_baseline():
    assert "softmax" in list_mixers()
    assert set(list_mixers(causal=True)) <= set(list_mixers())
    info = postlib.mixer_info("softmax")
    assert info.causal and info.family == "attention" and info.summary


@pytest.mark.parametrize("name", list_mixers())
@pytest.mark.parametrize("length", [1, 7, 24])
def test_forward_keeps_shape(name, length):
    mixer = _small(name)
    x = torch.randn(2, length, D_MODEL, dtype=torch.float64)
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert isinstance(mixer.causal, bool)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_step_reproduces_forward(name):
    mixer = _small(name)
    x = torch.randn(2, 17, D_MODEL, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_step_reproduces_forward_fp32(name):
    torch.manual_seed(0)
    mixer = build_mixer(name, D_MODEL).eval()
    x = torch.randn(2, 11, D_MODEL)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list_mixers(causal=True))
def test_future_never_changes_the_past(name):
    mixer = _small(name)
    x = torch.randn(1, 16, D_MODEL, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 10:] = torch.randn(1, 6, D_MODEL, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x)[:, :10], mixer(x2)[:, :10])
        assert not torch.allclose(mixer(x)[:, 10:], mixer(x2)[:, 10:])


@pytest.mark.parametrize("name", list_mixers())
def test_bad_input_names_the_argument(name):
    mixer = _small(name)
    with pytest.raises(ValueError, match=r"x must have"):
        mixer(torch.randn(2, 5, D_MODEL + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(batch, length, d_model\)"):
        mixer(torch.randn(5, D_MODEL, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be"):
        mixer([[0.0] * D_MODEL])


@pytest.mark.parametrize("name", list_mixers(causal=False))
def test_non_causal_mixers_refuse_to_step(name):
    mixer = _small(name)
    with pytest.raises(NotImplementedError):
        mixer.step(torch.randn(1, D_MODEL, dtype=torch.float64), None)


def test_build_mixer_rejects_unknown_names_and_widths():
    with pytest.raises(ValueError, match="name must be one of"):
        build_mixer("no-such-mixer", 8)
    with pytest.raises(ValueError, match="d_model"):
        build_mixer("softmax", 0)
    with pytest.raises(ValueError, match="divisible"):
        build_mixer("softmax", 10, n_heads=4)


def test_step_rejects_wrong_token_shape():
    mixer = _small("softmax")
    state = mixer.init_state(2)
    with pytest.raises(ValueError, match=r"x_t must have .*\(batch, d_model"):
        mixer.step(torch.randn(2, 3, D_MODEL, dtype=torch.float64), state)
