"""The Mamba block: step ≡ forward for both selective and LTI variants, and every scan backend gives the same block."""
import pytest
import torch

from postlib import build_mixer, run_steps


@pytest.mark.parametrize("selective", [True, False])
def test_step_equals_forward(selective):
    torch.manual_seed(0)
    m = build_mixer("mamba", 8, d_state=4, selective=selective).double().eval()
    x = torch.randn(2, 23, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(m, x), m(x), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", ["parallel", "chunked", "triton"])
def test_backends_give_the_same_block(backend):
    torch.manual_seed(0)
    ref = build_mixer("mamba", 8, d_state=4, backend="sequential").double()
    other = build_mixer("mamba", 8, d_state=4, backend=backend).double()
    other.load_state_dict(ref.state_dict())
    x = torch.randn(1, 19, 8, dtype=torch.float64)
    torch.testing.assert_close(other(x), ref(x), rtol=1e-9, atol=1e-11)


def test_selectivity_means_input_dependent_decay():
    """Same weights, two inputs: the selective block's effective Δ differs, the LTI block's does not."""
    torch.manual_seed(0)
    m = build_mixer("mamba", 8, d_state=4)
    x1, x2 = torch.randn(1, 5, 8), torch.randn(1, 5, 8)
    d1, _, _ = m._ssm_params(x1.new_ones(1, 5, m.d_inner) * x1.mean())
    d2, _, _ = m._ssm_params(x2.new_ones(1, 5, m.d_inner) * x2.mean())
    assert not torch.allclose(d1, d2)


def test_constructor_errors():
    with pytest.raises(ValueError, match="backend must be one of"):
        build_mixer("mamba", 8, backend="gpu")
    with pytest.raises(ValueError, match="d_state must be >= 1"):
        build_mixer("mamba", 8, d_state=0)
