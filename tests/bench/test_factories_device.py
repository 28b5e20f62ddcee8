"""The live-timing factories the kernel-attention chapter measures put their tensors and models on the
device they are given (the page passes sizes.device), so a GPU reader times the GPU, not the CPU."""
import torch

from postlib.bench.experiments.generation import generation_factories
from postlib.bench.experiments.linear_attention import scaling_factories


def _captured(thunk) -> list:
    """Tensors and modules a thunk closes over (its inputs, its state, its layer)."""
    import inspect
    values = [cell.cell_contents for cell in inspect.unwrap(thunk).__closure__ or ()]
    flat = []
    for v in values:
        flat += list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else [v]
    return [v for v in flat if isinstance(v, (torch.Tensor, torch.nn.Module))]


def test_factories_build_on_the_given_device():
    for factories in (scaling_factories(heads=2, head_dim=8, chunk_size=4, device="meta"),
                      generation_factories(d_model=16, n_heads=2, device="meta")):
        for name, factory in factories.items():
            captured = _captured(factory(8))
            assert captured, name
            for value in captured:
                device = next(value.parameters()).device if isinstance(value, torch.nn.Module) else value.device
                assert device.type == "meta", (name, value.__class__.__name__)


def test_factories_draw_the_same_numbers_on_every_device():
    cpu = scaling_factories(heads=2, head_dim=8, chunk_size=4)["softmax attention (SDPA causal)"](8)()
    again = scaling_factories(heads=2, head_dim=8, chunk_size=4, device=torch.device("cpu"))
    assert torch.equal(cpu, again["softmax attention (SDPA causal)"](8)())
