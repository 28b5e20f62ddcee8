"""RetNet's multi-scale retention: the paper's normalised parallel formula written out ≡ the mixer's chunkwise and
recurrent forms; rotation gives relative positions; every backend and step agree."""
import math

import pytest
import torch

from postlib import build_mixer, run_steps
from postlib.recurrent.retention import retention, retnet_gammas
from postlib.recurrent.retnet import normalise_retention, rotate, rotation_angles, row_decay_sums


def _mixer(**config):
    torch.manual_seed(0)
    return build_mixer("retnet", 16, n_heads=2, **config).double().eval()


def test_normalisation_is_the_papers_parallel_formula():
    """§2.2: QKᵀ/√d, D̃_nm = D_nm/√(Σ_i D_ni), R = QKᵀ ⊙ D̃, R̃_nm = R_nm / max(|Σ_i R_ni|, 1), output R̃V —
    written with L × L matrices, against the mixer's one retention call on [V, 1]."""
    mixer = _mixer()
    x = torch.randn(2, 23, 16, dtype=torch.float64)
    positions = torch.arange(23)
    q, k, v1, _ = mixer._qkvg(x, positions)                     # k already carries 1/√d_k
    v = v1[..., :-1]
    gamma = retnet_gammas(2, torch.float64)
    n = positions.double()
    D = torch.where(n[:, None] >= n[None, :], gamma[:, None, None] ** (n[:, None] - n[None, :]), 0.0)
    D_tilde = D / D.sum(-1, keepdim=True).sqrt()
    R = (q @ k.transpose(-1, -2)) * D_tilde
    R_tilde = R / R.sum(-1, keepdim=True).abs().clamp(min=1.0)
    ours = normalise_retention(retention(q, k, v1, gamma, chunk_size=8), gamma, positions)
    torch.testing.assert_close(ours, R_tilde @ v, rtol=1e-11, atol=1e-12)
    big = normalise_retention(retention(q * 40, k * 40, v1, gamma), gamma, positions)
    R40 = R * 1600
    torch.testing.assert_close(big, (R40 / R40.sum(-1, keepdim=True).abs().clamp(min=1.0)) @ v, rtol=1e-10, atol=1e-12)
    assert (R40.sum(-1).abs() > 1).any()


def test_row_decay_sums_closed_form():
    gamma = torch.tensor([0.5, 0.97], dtype=torch.float64)
    sums = row_decay_sums(gamma, torch.arange(6))
    for h, g in enumerate(gamma.tolist()):
        assert sums[h].tolist() == pytest.approx([sum(g ** i for i in range(n + 1)) for n in range(6)], rel=1e-14)


def test_rotation_makes_scores_relative():
    angles = rotation_angles(8)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    score = lambda n, m: (rotate(q[None], torch.tensor([n]), angles) * rotate(k[None], torch.tensor([m]), angles)).sum()
    assert score(7, 3).item() == pytest.approx(score(104, 100).item(), rel=1e-12)
    assert score(5, 5).item() == pytest.approx((q * k).sum().item(), rel=1e-12)
    torch.testing.assert_close(angles, 1 / 10000 ** torch.linspace(0, 1, 4, dtype=torch.float64))


@pytest.mark.parametrize("backend", ["parallel", "recurrent"])
def test_mixer_backends_agree(backend):
    ref = _mixer(chunk_size=4)
    other = _mixer(chunk_size=4, backend=backend)
    x = torch.randn(2, 19, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), ref(x), rtol=1e-10, atol=1e-12)


def test_step_equals_forward_across_chunks_and_keeps_a_constant_state():
    mixer = _mixer(chunk_size=4)
    x = torch.randn(2, 13, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(run_steps(mixer, x), mixer(x), rtol=1e-10, atol=1e-12)
        state = mixer.init_state(2, dtype=torch.float64)
        shapes = set()
        for t in range(13):
            _, state = mixer.step(x[:, t], state)
            shapes.add(tuple(state["S"].shape))
    assert shapes == {(2, 2, 8, 2 * 8 + 1)}                    # d_k × (d_v + 1) per head, whatever the length


def test_gammas_follow_the_paper_and_training_works():
    mixer = build_mixer("retnet", 32, n_heads=4)
    torch.testing.assert_close(mixer.gamma, torch.tensor([1 - 2 ** -5, 1 - 2 ** -6, 1 - 2 ** -7, 1 - 2 ** -8]))
    x = torch.randn(2, 20, 32)
    mixer(x).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mixer.parameters())


def test_bfloat16_keeps_the_decays_in_fp32():
    """In bf16, 1 − 2^(−9) rounds to 1: the decays must not be cast to the data's dtype."""
    torch.manual_seed(0)
    mixer = build_mixer("retnet", 64, n_heads=8)
    x = torch.randn(1, 40, 64)
    ref = mixer(x)
    out = mixer.bfloat16()(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert ((out.float() - ref).pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item() < 0.05


def test_config_errors():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        build_mixer("retnet", 18, n_heads=4)
    with pytest.raises(ValueError, match="must be even"):
        build_mixer("retnet", 12, n_heads=4)
    with pytest.raises(ValueError, match="backend must be one of"):
        build_mixer("retnet", 16, backend="fast")
    mixer = _mixer()
    with pytest.raises(ValueError, match="x_t has batch 1 but the state was made for batch 2"):
        mixer.step(torch.randn(1, 16, dtype=torch.float64), mixer.init_state(2, dtype=torch.float64))
    assert math.isfinite(mixer.memory_estimate(1, 100, torch.float32))


def test_triton_backend_runs_the_kernel_or_says_why_not():
    """backend="triton" is never silently replaced: under the interpreter (or on CUDA) it runs the kernel and
    equals the chunkwise form; on a plain CPU it raises the kernel's clear error."""
    from postlib.kernels import interpreter_enabled
    mixer = _mixer(backend="triton")
    ref = _mixer()
    x = torch.randn(1, 11, 16, dtype=torch.float64)
    if interpreter_enabled():
        with torch.no_grad():
            torch.testing.assert_close(mixer(x), ref(x), rtol=1e-10, atol=1e-12)
    else:
        with pytest.raises(TypeError, match="Triton kernels need CUDA tensors"):
            mixer(x)
