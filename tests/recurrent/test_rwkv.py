"""The RWKV-4 mixer: the paper's initialisation, parallel ≡ step ≡ prefill-then-step, a constant-size
state, the memory estimate bounds the measured peak, bad input named. (Shape, step ≡ forward and
causality for every mixer: tests/test_registry.py; the peer check: test_rwkv_peers.py.)"""
import math

import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.bench import peak_memory
from postlib.bench.measure import mixer_thunk
from postlib.recurrent.rwkv import RWKVMixer, rwkv4_bonus_init, rwkv4_decay_init


def test_decay_schedule_spans_slow_to_fast_channels():
    d = rwkv4_decay_init(64)
    assert d[0] == pytest.approx(-5.0) and d[-1] == pytest.approx(3.0)
    assert (d[1:] > d[:-1]).all()                                  # channel 0 remembers longest
    deeper = rwkv4_decay_init(64, layer_id=3, n_layers=4)          # exponent 0.7 + 1.3: more slow channels
    assert (deeper[1:-1] < d[1:-1]).all()
    u = rwkv4_bonus_init(6)
    torch.testing.assert_close(u, math.log(0.3) + torch.tensor([0.0, 0.5, -0.5, 0.0, 0.5, -0.5]))


def test_mixer_uses_the_paper_initialisation():
    m = RWKVMixer(32, layer_id=1, n_layers=3)
    torch.testing.assert_close(m.time_mix.time_decay.data, rwkv4_decay_init(32, 1, 3))
    torch.testing.assert_close(m.time_mix.decay, torch.exp(rwkv4_decay_init(32, 1, 3)))
    mu = m.time_mix.time_mix_k.data
    assert mu[0] == 0 and (mu[1:] > mu[:-1]).all() and mu[-1] < 1


@pytest.mark.parametrize("channel_mix", [True, False])
def test_prefill_then_step_equals_one_pass(channel_mix):
    torch.manual_seed(0)
    m = build_mixer("rwkv", 16, channel_mix=channel_mix).double().eval()
    x = torch.randn(2, 30, 16, dtype=torch.float64)
    with torch.no_grad():
        full = m(x)
        y, state = m.prefill(x[:, :21])
        outs = [y]
        for t in range(21, 30):
            y_t, state = m.step(x[:, t], state)
            outs.append(y_t[:, None])
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["recurrent", "parallel", "triton"])
def test_every_wkv_backend_gives_the_same_mixer(backend):
    torch.manual_seed(0)
    ref = build_mixer("rwkv", 16, backend="recurrent").double().eval()
    m = build_mixer("rwkv", 16, backend=backend).double().eval()
    m.load_state_dict(ref.state_dict())
    x = torch.randn(1, 40, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x), rtol=1e-10, atol=1e-12)


def test_state_size_does_not_grow_with_the_context():
    torch.manual_seed(0)
    m = build_mixer("rwkv", 8).eval()
    sizes = []
    with torch.no_grad():
        for n in (1, 10, 200):
            _, state = m.prefill(torch.randn(1, n, 8))
            leaves = [state["channel"], state["time"][0], *state["time"][1]]
            sizes.append(sum(t.numel() * t.element_size() for t in leaves))
    assert sizes[0] == sizes[1] == sizes[2] == m.state_bytes(1)


@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
@pytest.mark.parametrize("length", [7, 300])
def test_memory_estimate_bounds_the_measured_peak(mode, length):
    torch.manual_seed(0)
    m = build_mixer("rwkv", 32)
    run = mixer_thunk(m, torch.randn(2, length, 32), mode)     # exactly the call the registry test measures
    run()
    measured = peak_memory(run)
    estimate = m.memory_estimate(2, length, torch.float32, mode)
    assert measured <= estimate <= 4 * measured + (1 << 17), (measured, estimate)


def test_bad_configuration_and_state_are_named():
    with pytest.raises(ValueError, match=r"layer_id must be an int in \[0, n_layers=2\)"):
        RWKVMixer(8, layer_id=2, n_layers=2)
    with pytest.raises(ValueError, match="backend must be one of"):
        RWKVMixer(8, backend="cuda")
    m = RWKVMixer(8)
    with pytest.raises(ValueError, match="state was made for batch 2"):
        m.step(torch.randn(3, 8), m.init_state(2))
    with pytest.raises(ValueError, match="mode must be one of"):
        m.memory_estimate(1, 4, torch.float32, "backward")


def test_run_steps_in_fp32_matches_forward():
    torch.manual_seed(0)
    m = build_mixer("rwkv", 24).eval()
    x = torch.randn(1, 50, 24) * 3
    with torch.no_grad():
        torch.testing.assert_close(run_steps(m, x), m(x), rtol=1e-4, atol=1e-5)


def test_empty_batch_gives_empty_output():
    m = build_mixer("rwkv", 8)
    assert m(torch.randn(0, 5, 8)).shape == (0, 5, 8)
    y, _ = m.step(torch.randn(0, 8), m.init_state(0))
    assert y.shape == (0, 8)
