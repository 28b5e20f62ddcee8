"""ConvMixer: the receptive field (counted and measured by autograd), a constant step state, the 2-D
classifier against the paper's formulation, the memory estimate, bad input.

Peer: timm's ``convmixer`` cannot be imported here (timm imports torchvision, and PyPI's torchvision
does not import beside torch 2.13.0), so the 2-D model is checked against an explicit transcription of
the paper's formulation (Trockman & Kolter 2022, its Fig. 2 / Eq. 2–3), with these conventions:
patch embedding = Conv2d(in, h, p, stride=p) → GELU → BN; block = Residual(depthwise Conv2d(h, h, k,
groups=h, padding="same") → GELU → BN), then Conv2d(h, h, 1) → GELU → BN; head = global average pool →
Linear. BatchNorm is checked in training mode (batch statistics) and eval mode (running statistics).
"""
import pytest
import torch
from torch import nn

from postlib import build_mixer
from postlib.bench import peak_memory
from postlib.bench.measure import mixer_thunk
from postlib.mixing.convmixer import receptive_field, receptive_field_counts
from postlib.mixing.vision import ConvMixer2d


def test_receptive_field_grows_linearly_with_depth():
    assert [receptive_field(d, 9) for d in range(4)] == [1, 9, 17, 25]
    counts = receptive_field_counts(40, 3, 5)
    row = counts[30]
    assert (row > 0).sum() == receptive_field(3, 5) and (row[31:] == 0).all()
    assert row.sum() == 5 ** 3                          # paths: k choices per layer
    assert row.argmax() == 30 - 6                       # the effective field peaks mid-window (3·(5−1)/2 back)


@pytest.mark.parametrize("depth,k", [(1, 3), (3, 4)])
def test_measured_receptive_field_equals_the_count(depth, k):
    """d output_t / d input_s ≠ 0 exactly where the path count is > 0, through real stacked mixers."""
    torch.manual_seed(0)
    L, d = 20, 4
    stack = nn.Sequential(*[build_mixer("convmixer", d, kernel_size=k) for _ in range(depth)]).double()
    x = torch.randn(1, L, d, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(d, dtype=torch.float64)       # (a plain sum would vanish: the last LayerNorm centres)
    jac = torch.autograd.functional.jacobian(lambda x: stack(x) @ probe, x)[0, :, 0].abs().sum(-1)  # (L_out, L_in)
    torch.testing.assert_close(jac > 0, receptive_field_counts(L, depth, k) > 0, rtol=0, atol=0)


def test_step_keeps_only_the_last_k_minus_1_inputs():
    m = build_mixer("convmixer", 6, kernel_size=5).eval()
    state = m.init_state(2)
    with torch.no_grad():
        for _ in range(12):
            _, state = m.step(torch.randn(2, 6), state)
            assert state["window"].shape == (2, 6, 4)
    with pytest.raises(ValueError, match="state was made for batch 2"):
        m.step(torch.randn(1, 6), state)


def _paper_convmixer(h, depth, k, p, n_classes, in_channels):
    class Residual(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    return nn.Sequential(
        nn.Conv2d(in_channels, h, kernel_size=p, stride=p), nn.GELU(), nn.BatchNorm2d(h),
        *[nn.Sequential(Residual(nn.Sequential(nn.Conv2d(h, h, k, groups=h, padding="same"), nn.GELU(),
                                               nn.BatchNorm2d(h))),
                        nn.Conv2d(h, h, kernel_size=1), nn.GELU(), nn.BatchNorm2d(h)) for _ in range(depth)],
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(h, n_classes))


@pytest.mark.parametrize("train", [True, False])
def test_convmixer2d_matches_the_papers_formulation(train):
    torch.manual_seed(0)
    ours = ConvMixer2d(dim=8, depth=2, kernel_size=3, patch_size=2, n_classes=5, in_channels=3).double()
    paper = _paper_convmixer(8, 2, 3, 2, 5, 3).double()
    ours_tensors = list(ours.parameters()) + list(ours.buffers())
    paper_tensors = list(paper.parameters()) + list(paper.buffers())
    assert [t.shape for t in ours_tensors] == [t.shape for t in paper_tensors]     # same layout, same order
    with torch.no_grad():
        for a, b in zip(ours_tensors, paper_tensors):
            if a.dtype.is_floating_point:
                a.copy_(torch.rand_like(a) + 0.5 if a.ndim == 1 else torch.randn_like(a) * 0.3)
                b.copy_(a)
    ours.train(train)
    paper.train(train)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(ours(x), paper(x))


@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
def test_memory_estimate_bounds_the_measured_peak(mode):
    torch.manual_seed(0)
    m = build_mixer("convmixer", 32)
    run = mixer_thunk(m, torch.randn(2, 300, 32), mode)        # exactly the call the registry test measures
    run()
    assert peak_memory(run) <= m.memory_estimate(2, 300, torch.float32, mode) <= 8 * peak_memory(run)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        build_mixer("convmixer", 8, kernel_size=0)
    with pytest.raises(ValueError, match=r"images must have shape \(batch, channels=1"):
        ConvMixer2d()(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        ConvMixer2d()(torch.randn(2, 8, 8))


def test_empty_batch_gives_empty_output():
    m = build_mixer("convmixer", 8)
    assert m(torch.randn(0, 5, 8)).shape == (0, 5, 8)
    y, _ = m.step(torch.randn(0, 8), m.init_state(0))
    assert y.shape == (0, 8)
