"""gMLP: the spatial gating unit against ``g-mlp-pytorch`` (copied weights), identity at init, the
max_len error, a growing step state, the memory estimate.

Conventions of g-mlp-pytorch's ``SpatialGatingUnit(dim, dim_seq, causal, heads=1)``: it splits its
input as (res, gate) = x.chunk(2) — our (Z₁, Z₂) — normalises the gate, and computes
out[m] = Σ_n weight[h, m, n]·gate[n] + bias[h, m] with weight (heads, dim_seq, dim_seq): our W[t, s]
with heads = 1. Causal: it slices weight[:, :n, :n] and zeroes the strict upper triangle, as we do.
Its ``gMLPBlock`` is proj_in → GELU → SGU → proj_out, the mixer ``"gmlp"`` (norm and residual outside).
"""
import pytest
import torch

from postlib import build_mixer
from postlib.bench import peak_memory
from postlib.bench.measure import mixer_thunk
from postlib.mixing.gmlp import GMLPMixer, SpatialGatingUnit

peer = pytest.importorskip("g_mlp_pytorch")


def _copy_sgu(ours: SpatialGatingUnit, theirs) -> None:
    with torch.no_grad():
        theirs.weight.copy_(torch.randn_like(theirs.weight) * 0.3)
        theirs.bias.copy_(torch.randn_like(theirs.bias))
        theirs.norm.weight.copy_(torch.randn_like(theirs.norm.weight))
        theirs.norm.bias.copy_(torch.randn_like(theirs.norm.bias))
        ours.weight.copy_(theirs.weight[0])
        ours.bias.copy_(theirs.bias[0])
        ours.norm.load_state_dict(theirs.norm.state_dict())


@pytest.mark.parametrize("causal", [True, False])
def test_spatial_gating_unit_matches_g_mlp_pytorch(causal):
    torch.manual_seed(0)
    n, d_ffn = 12, 10
    theirs = peer.g_mlp_pytorch.SpatialGatingUnit(d_ffn, n, causal=causal).double()
    ours = SpatialGatingUnit(d_ffn, n, causal=causal).double()
    _copy_sgu(ours, theirs)
    z = torch.randn(3, n, d_ffn, dtype=torch.float64)
    torch.testing.assert_close(ours(z), theirs(z))
    if causal:    # shorter inputs use W's top-left block, in both
        torch.testing.assert_close(ours(z[:, :5]), theirs(z[:, :5]))


def test_mixer_matches_the_peers_gmlp_block():
    torch.manual_seed(0)
    n, d, d_ffn = 9, 8, 16
    theirs = peer.g_mlp_pytorch.gMLPBlock(dim=d, dim_ff=d_ffn, seq_len=n, causal=True).double()
    ours = GMLPMixer(d, max_len=n, expansion=2).double()
    _copy_sgu(ours.sgu, theirs.sgu)
    with torch.no_grad():
        ours.proj_in.load_state_dict(theirs.proj_in[0].state_dict())
        ours.proj_out.load_state_dict(theirs.proj_out.state_dict())
    x = torch.randn(2, n, d, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))


def test_unit_starts_as_the_identity_on_its_first_half():
    torch.manual_seed(0)
    sgu = SpatialGatingUnit(8, 64)
    z = torch.randn(2, 64, 8)
    assert (sgu(z) - z[..., :4]).abs().max() < 1e-3 * z.abs().max()


def test_spatial_weight_is_causal():
    sgu = SpatialGatingUnit(4, 6)
    W = sgu.spatial_weight(5)
    assert W.shape == (5, 5) and (W.triu(1) == 0).all() and (W.tril() != 0).any()


def test_longer_input_than_max_len_is_refused_by_name():
    m = build_mixer("gmlp", 8, max_len=16)
    with pytest.raises(ValueError, match=r"max_len=16 .* length 17"):
        m(torch.randn(1, 17, 8))
    state = m.init_state(1)
    with torch.no_grad():
        for _ in range(16):
            _, state = m.step(torch.randn(1, 8), state)
        with pytest.raises(ValueError, match="max_len=16"):
            m.step(torch.randn(1, 8), state)


def test_step_keeps_every_past_gate():
    m = build_mixer("gmlp", 8, max_len=32).eval()
    state = m.init_state(2)
    with torch.no_grad():
        for t in range(5):
            _, state = m.step(torch.randn(2, 8), state)
    assert state["gates"].shape == (2, 5, m.d_ffn // 2)
    with pytest.raises(ValueError, match="state was made for batch 2"):
        m.step(torch.randn(3, 8), state)


def test_parameters_grow_with_max_len_squared():
    small, big = GMLPMixer(8, max_len=64), GMLPMixer(8, max_len=128)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(big) - count(small) == 128 ** 2 - 64 ** 2 + 128 - 64


@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
@pytest.mark.parametrize("length", [5, 200])
def test_memory_estimate_bounds_the_measured_peak(mode, length):
    torch.manual_seed(0)
    m = build_mixer("gmlp", 32, max_len=256)
    run = mixer_thunk(m, torch.randn(2, length, 32), mode)     # exactly the call the registry test measures
    run()
    measured = peak_memory(run)
    assert measured <= m.memory_estimate(2, length, torch.float32, mode), measured


def test_empty_batch_gives_empty_output():
    m = build_mixer("gmlp", 8)
    assert m(torch.randn(0, 5, 8)).shape == (0, 5, 8)
    y, _ = m.step(torch.randn(0, 8), m.init_state(0))
    assert y.shape == (0, 8)
