"""CONTRACTS §1–2 for this part's mixers (retnet, transformer_xl, mega, Mega-chunk): memory_estimate bounds the
measured peak and stays within 8× of it; an empty batch gives an empty output, in forward and step."""
import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.bench import peak_memory

CASES = [("retnet", {}), ("transformer_xl", {}), ("mega", {}), ("mega", {"chunk_size": 32})]


@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}{c}" for n, c in CASES])
@pytest.mark.parametrize("d_model,batch", [(64, 2), (32, 1)])
@pytest.mark.parametrize("length", [1, 7, 33, 160, 1024])
@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
def test_estimate_bounds_the_measured_peak(name, config, length, mode, d_model, batch):
    torch.manual_seed(0)
    mixer = build_mixer(name, d_model, **config)
    x = torch.randn(batch, length, d_model)

    def run():
        if mode == "forward":
            with torch.no_grad():
                return mixer(x)
        mixer(x).sum().backward()                  # allocates every parameter's gradient: part of the peak

    run()                                          # lazy one-time allocations are not the call's own
    mixer.zero_grad(set_to_none=True)              # outside the measurement, or freeing old grads offsets the peak
    peak = peak_memory(run)
    estimate = mixer.memory_estimate(batch, length, torch.float32, mode)
    assert estimate >= peak, f"{name} {mode} L={length}: estimate {estimate} < measured peak {peak}"
    assert estimate <= 8 * peak, f"{name} {mode} L={length}: estimate {estimate} > 8 × peak {peak}"


@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}{c}" for n, c in CASES])
def test_empty_batch_gives_an_empty_output(name, config):
    mixer = build_mixer(name, 32, **config)
    x = torch.randn(0, 9, 32)
    with torch.no_grad():
        assert mixer(x).shape == (0, 9, 32)
        assert run_steps(mixer, x).shape == (0, 9, 32)
