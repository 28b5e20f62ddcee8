"""Linformer equals Eq. 7 written out; error falls with rank; causality leaks."""
import pytest
import torch

from postlib.attention import attention_weights, softmax_attention
from postlib.attention.linformer import (causality_leak, linformer_attention, linformer_reference,
                                         mean_pool_projection, random_projection, rank_for_energy, singular_values)
from postlib.testing import rel_rms




def _qkv(L, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 2, L, D, generator=g, dtype=torch.float64) for _ in range(3))


@pytest.mark.parametrize("L,rank", [(1, 1), (7, 3), (13, 13), (100, 16)])
def test_equals_reference(L, rank):
    q, k, v = _qkv(L)
    E, F = random_projection(rank, L, 0), random_projection(rank, L, 1)
    assert rel_rms(linformer_reference(q, k, v, E, F), linformer_attention(q, k, v, E, F)) < 1e-12


def test_identity_projection_is_exact_softmax():
    q, k, v = _qkv(13)
    I = torch.eye(13, dtype=torch.float64)
    assert rel_rms(softmax_attention(q, k, v), linformer_attention(q, k, v, I, I)) < 1e-12


def test_mean_pooling_rows_sum_to_one():
    P = mean_pool_projection(5, 17)
    torch.testing.assert_close(P.sum(1), torch.ones(5, dtype=torch.float64))
    assert (P > 0).sum() == 17


def test_error_falls_with_rank():
    q, k, v = _qkv(128)
    ref = softmax_attention(q, k, v)
    errs = [sum(rel_rms(ref, linformer_attention(q, k, v, random_projection(r, 128, s), random_projection(r, 128, s + 99)))
                for s in range(4)) / 4 for r in (4, 32, 256)]
    assert errs[0] > errs[1] > errs[2]


def test_spectrum_and_energy_rank():
    q, k, _ = _qkv(64)
    sv = singular_values(attention_weights(q, k))
    assert sv.shape == (2, 2, 64) and (sv[..., :-1] >= sv[..., 1:] - 1e-12).all()
    assert 1 <= rank_for_energy(sv, 0.9) <= 64
    assert rank_for_energy(torch.tensor([1.0, 0.0, 0.0]), 0.9) == 1


def test_projection_breaks_causality():
    q, k, v = _qkv(20)
    assert causality_leak(q, k, v, random_projection(4, 20), random_projection(4, 20, 1), position=5) > 1e-3


def test_bad_inputs():
    q, k, v = _qkv(10)
    with pytest.raises(ValueError, match=r"E must have shape \(k, length=10\)"):
        linformer_attention(q, k, v, torch.randn(3, 9, dtype=torch.float64), torch.randn(3, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="same rank k"):
        linformer_attention(q, k, v, torch.randn(3, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="rank must be >= 1"):
        random_projection(0, 10)


def test_mixer_rejects_too_long_inputs():
    import postlib
    m = postlib.build_mixer("linformer", 16, n_heads=2, rank=4, max_length=8)
    assert m(torch.randn(1, 8, 16)).shape == (1, 8, 16)
    with pytest.raises(ValueError, match="max_length 8"):
        m(torch.randn(1, 9, 16))


def test_theorem2_construction_tends_to_one_output_for_every_query():
    """E = δR, F = e^{−δ}R: as δ → 0 softmax(w δRᵀ) → 1/k, so every query gets (1/k)·1ᵀ F V (the proof's
    construction, measured in the chapter)."""
    from postlib.attention.linformer import theorem2_epsilon, theorem2_projections
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 20, 8, generator=g, dtype=torch.float64) for _ in range(3))
    E, F = theorem2_projections(6, 20, 1e-7, seed=3)
    out = linformer_attention(q, k, v, E, F)
    torch.testing.assert_close(out, (F @ v).mean(2, keepdim=True).expand_as(out), rtol=1e-5, atol=1e-6)
    eye = torch.eye(20, dtype=torch.float64)
    assert theorem2_epsilon(q, k, v, eye, eye).abs().max() < 1e-12          # exact projections need ε = 0
    assert theorem2_epsilon(q, k, v, E, F).shape == (1, 2, 20)
    with pytest.raises(ValueError, match="delta must be > 0"):
        theorem2_projections(6, 20, 0.0)
