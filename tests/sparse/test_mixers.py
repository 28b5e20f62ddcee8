"""The sparse mixers: their patterns, bounded decode caches, memory estimates and errors.

(step ≡ forward, causality, shapes and error messages are checked for every mixer by tests/test_registry.py.)
"""
import pytest
import torch

import postlib
from postlib import build_mixer, run_steps
from postlib.bench import peak_memory
from postlib.sparse import attention_mask
from postlib.sparse.attention import masked_attention


def test_registered_in_the_sparse_family():
    assert set(postlib.list_mixers(family="sparse")) == {"longformer", "bigbird", "longnet"}
    assert postlib.mixer_info("longformer").causal and postlib.mixer_info("longnet").causal
    assert not postlib.mixer_info("bigbird").causal


@pytest.mark.parametrize("name,config,kind,params", [
    ("longformer", dict(window=6, n_global=2), "longformer", dict(window=6, global_tokens=[0, 1])),
    ("bigbird", dict(block_size=4, num_random_blocks=1, num_global_blocks=1, seed=2), "bigbird",
     dict(block_size=4, num_random_blocks=1, num_global_blocks=1, seed=2))])
def test_mixer_attends_through_its_pattern(name, config, kind, params):
    torch.manual_seed(0)
    mixer = build_mixer(name, 16, n_heads=2, **config).double()
    x = torch.randn(2, 23, 16, dtype=torch.float64)
    q, k, v = mixer.split_heads(x)
    mask = attention_mask(kind, 23, causal=mixer.causal, **params)
    torch.testing.assert_close(mixer(x), mixer.merge_heads(masked_attention(q, k, v, mask)))


@pytest.mark.parametrize("name,config", [("longformer", dict(window=8, n_global=2)),
                                         ("longnet", dict(segment_lengths=(4, 8, 16), dilations=(1, 2, 4)))])
def test_decode_cache_is_bounded(name, config):
    """The state after 200 tokens is no bigger than after 60: decoding memory is flat in the context."""
    torch.manual_seed(0)
    mixer = build_mixer(name, 16, n_heads=2, **config).double().eval()
    sizes = {}
    with torch.no_grad():
        state = mixer.init_state(1, dtype=torch.float64)
        for t in range(200):
            _, state = mixer.step(torch.randn(1, 16, dtype=torch.float64), state)
            sizes[t] = sum(x.numel() for v in state.values() if isinstance(v, (list, torch.Tensor))
                           for x in (v if isinstance(v, list) else [v]))
    assert max(sizes[t] for t in range(60, 200)) <= max(sizes[t] for t in range(60))


def test_longformer_steps_across_the_window_and_sinks():
    torch.manual_seed(0)
    mixer = build_mixer("longformer", 16, n_heads=2, window=4, n_global=3).double().eval()
    x = torch.randn(2, 30, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x))


def test_longnet_steps_with_and_without_head_offsets():
    torch.manual_seed(0)
    for per_head in (True, False):
        mixer = build_mixer("longnet", 16, n_heads=4, segment_lengths=(3, 8, 20), dilations=(1, 2, 5),
                            per_head_offsets=per_head).double().eval()
        x = torch.randn(2, 45, 16, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(run_steps(mixer, x), mixer(x))


@pytest.mark.parametrize("name", ["longformer", "bigbird", "longnet"])
@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
def test_memory_estimate_bounds_the_measured_peak(name, mode):
    torch.manual_seed(0)
    mixer = build_mixer(name, 32)
    for length in (40, 700):
        x = torch.randn(2, length, 32, requires_grad=mode != "forward")

        def call():
            if mode == "forward":
                with torch.no_grad():
                    return mixer(x)
            mixer.zero_grad(set_to_none=True)
            x.grad = None
            mixer(x).sum().backward()
        call()
        peak = peak_memory(call)
        estimate = mixer.memory_estimate(2, length, torch.float32, mode)
        assert peak <= estimate <= 6 * peak + 2**20, (length, peak, estimate)


def test_bad_configuration():
    with pytest.raises(ValueError, match="window must be >= 1"):
        build_mixer("longformer", 16, window=0)
    with pytest.raises(ValueError, match="n_global must be >= 0"):
        build_mixer("longformer", 16, n_global=-1)
    with pytest.raises(ValueError, match="segment_lengths and dilations must have the same length"):
        build_mixer("longnet", 16, segment_lengths=(4, 8), dilations=(1,))
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        build_mixer("bigbird", 16, block_size=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        build_mixer("bigbird", 16, backend="cuda")
    mixer = build_mixer("longformer", 16)
    state = mixer.init_state(2)
    with pytest.raises(ValueError, match="batch"):
        mixer.step(torch.randn(3, 16), state)


@pytest.mark.parametrize("name", ["longformer", "bigbird", "longnet"])
def test_empty_batch(name):
    mixer = build_mixer(name, 16)
    assert mixer(torch.randn(0, 9, 16)).shape == (0, 9, 16)
    if mixer.causal:
        y, _ = mixer.step(torch.randn(0, 16), mixer.init_state(0))
        assert y.shape == (0, 16)
