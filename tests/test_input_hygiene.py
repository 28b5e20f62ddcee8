"""Bad or extreme input to the public functions: a clear error naming the argument, or a documented meaning.

One test per case found by the hostile-input audit (issue 12, "Library input"); the
mixer-level policy (empty batch, dtype/device, non-finite input, step batch) is in
tests/test_registry.py, the bench's arguments in tests/bench/test_measure.py.
"""
import pytest
import torch

from postlib import build_mixer
from postlib.attention import (flash_attention, linear_attention, linformer_attention, lsh_attention,
                               performer_attention, softmax_attention)
from postlib.attention.lola import lola_attention
from postlib.models import SequenceModel
from postlib.ssm import associative_scan, discretize, s4_kernel, selective_scan, ssd_chunked, zoh_diagonal
from postlib.ssm.conv import direct_causal_conv, fft_causal_conv
from postlib.ssm.s4 import nplr_legs


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


# --------------------------------------------------------------------------- silently replaced values
def test_performer_num_features_zero_is_refused_not_replaced():
    with pytest.raises(ValueError, match="num_features must be >= 1, got 0"):
        build_mixer("performer", 32, num_features=0)
    assert build_mixer("performer", 32, num_features=5).num_features == 5
    assert build_mixer("performer", 32).num_features == 17          # None: the documented rule, max(16, round(d·ln d))


def test_mamba_dt_rank_zero_is_refused_not_replaced():
    with pytest.raises(ValueError, match="dt_rank must be >= 1, got 0"):
        build_mixer("mamba", 32, dt_rank=0)
    assert build_mixer("mamba", 32).dt_rank == 2                    # None: ⌈d_model/16⌉


@pytest.mark.parametrize("name", ["mamba", "s4", "s4d", "dss"])
def test_dt_min_above_dt_max_is_refused(name):
    with pytest.raises(ValueError, match="dt_min must be <= dt_max"):
        build_mixer(name, 8, dt_min=0.5, dt_max=0.1)


@pytest.mark.parametrize("name", ["mamba", "s4", "s4d", "dss"])
@pytest.mark.parametrize("dt_min", [0.0, -1e-3, float("nan")])
def test_mamba_dt_min_zero_or_negative_names_the_argument(name, dt_min):
    with pytest.raises(ValueError, match="dt_min must be"):
        build_mixer(name, 8, dt_min=dt_min)


@pytest.mark.parametrize("name", ["linear", "performer", "lola"])
def test_negative_or_non_finite_eps_is_refused(name):
    for eps in (-1e-6, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps must be"):
            build_mixer(name, 8, eps=eps)
    q = k = v = randn(1, 1, 4, 2)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        linear_attention(q, k, v, eps=-1.0)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        lola_attention(q, k, v, eps=-1.0)


def test_eps_zero_with_relu_features_is_refused():
    with pytest.raises(ValueError, match="eps must be > 0 with feature_map='relu'"):
        build_mixer("linear", 8, feature_map="relu", eps=0.0)
    q = -randn(1, 1, 5, 4).abs()                                   # every entry <= 0: relu zeroes the whole row
    k, v = randn(1, 1, 5, 4), randn(1, 1, 5, 4)
    with pytest.raises(ValueError, match="eps must be > 0 with feature_map='relu'"):
        linear_attention(q, k, v, feature_map="relu", eps=0.0)
    assert torch.isfinite(linear_attention(q, k, v, feature_map="relu")).all()   # the default eps is fine
    assert torch.isfinite(linear_attention(q, k, v, eps=0.0)).all()             # elu+1 is positive: 0 is fine


def test_selective_scan_chunk_size_zero_is_refused():
    u, delta = randn(1, 2, 9), randn(1, 2, 9).abs()
    A, B, C = -randn(2, 3).abs(), randn(1, 3, 9), randn(1, 3, 9)
    for bad in (0, -4):
        with pytest.raises(ValueError, match="chunk_size must be >= 1"):
            selective_scan(u, delta, A, B, C, backend="chunked", chunk_size=bad)
    ref = selective_scan(u, delta, A, B, C, backend="sequential")
    torch.testing.assert_close(selective_scan(u, delta, A, B, C, backend="chunked", chunk_size=4), ref)


def test_zoh_diagonal_of_a_pure_integrator_is_its_limit():
    """λ = 0 is dx/dt = u: Ā = 1 and B̄ = Δ (the limit of (e^{Δλ} − 1)/λ), not 0/0."""
    lam = torch.tensor([0.0 + 0.0j, -0.5 + 2.0j, 1e-12 + 0.0j], dtype=torch.complex128, requires_grad=True)
    dt = torch.tensor(0.3, dtype=torch.float64)
    Ad, Bd = zoh_diagonal(lam, dt)
    torch.testing.assert_close(Ad[0], torch.tensor(1.0 + 0j, dtype=torch.complex128))
    torch.testing.assert_close(Bd[0], torch.tensor(0.3 + 0j, dtype=torch.complex128))
    torch.testing.assert_close(Bd[2], torch.tensor(0.3 + 0j, dtype=torch.complex128))       # continuous at 0
    torch.testing.assert_close(Bd[1], (torch.exp(0.3 * lam[1]) - 1) / lam[1])
    Bd.real.sum().backward()
    assert torch.isfinite(lam.grad).all()


@pytest.mark.parametrize("dt", [float("inf"), float("nan"), 0.0, -0.1])
def test_discretize_needs_a_finite_positive_step(dt):
    A, B = -torch.eye(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="dt must be"):
        discretize(A, B, dt)


@pytest.mark.parametrize("fn", [softmax_attention, lambda *a, **kw: flash_attention(*a, backend="torch", **kw),
                                lambda q, k, v, **kw: linformer_attention(q, k, v, torch.eye(4), torch.eye(4), **kw)])
@pytest.mark.parametrize("scale", [float("nan"), float("inf")])
def test_attention_scale_must_be_finite(fn, scale):
    q = k = v = randn(1, 1, 4, 2)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        fn(q, k, v, scale=scale)


# --------------------------------------------------------------------------- obscure errors, now named
def test_associative_scan_of_length_zero_names_the_length():
    with pytest.raises(ValueError, match=r"length L >= 1 along dim -2"):
        associative_scan(randn(3, 0, 2), randn(3, 0, 2))
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        associative_scan(randn(3, 4, 2), randn(3, 5, 2))


def test_ssd_chunked_with_mismatched_state_sizes_names_b_and_c():
    u, delta, A = randn(1, 2, 3, 8), randn(1, 2, 8).abs(), -randn(2).abs()
    with pytest.raises(ValueError, match=r"B and C must have the same shape \(batch, N, L\)"):
        ssd_chunked(u, delta, A, randn(1, 4, 8), randn(1, 5, 8))


@pytest.mark.parametrize("dt", [0.0, -0.01, float("inf"), torch.tensor([0.1, 0.0], dtype=torch.float64)])
def test_s4_kernel_needs_a_positive_step(dt):
    Lambda, P, B, _ = (torch.tensor(a) for a in nplr_legs(4))
    Lambda, P, B = (t.expand(2, -1) for t in (Lambda, P, B))
    with pytest.raises(ValueError, match="dt must be"):
        s4_kernel(Lambda, P, B, B, dt, 8)


def test_sequence_model_tokens_out_of_range_name_the_vocabulary():
    model = SequenceModel("softmax", vocab_size=10, d_model=8, n_layers=1)
    for bad in (10, -1):
        tokens = torch.zeros(2, 5, dtype=torch.long)
        tokens[1, 3] = bad
        with pytest.raises(ValueError, match=r"tokens must be ids in \[0, vocab_size=10\)"):
            model(tokens)
    assert model(torch.zeros(0, 5, dtype=torch.long)).shape == (0, 5, 10)


def test_lsh_attention_and_fft_conv_take_an_empty_batch():
    assert lsh_attention(randn(0, 2, 16, 8), randn(0, 2, 16, 8), 4, 2, 4).shape == (0, 2, 16, 8)
    assert fft_causal_conv(randn(0, 3, 8), randn(3, 8)).shape == (0, 3, 8)


# --------------------------------------------------------------------------- causal forms under non-finite input
def _qkv(L=12):
    return randn(1, 2, L, 4), randn(1, 2, L, 4), randn(1, 2, L, 4)


CAUSAL_ATTENTION = {
    "softmax": lambda q, k, v: softmax_attention(q, k, v, causal=True),
    "flash (torch)": lambda q, k, v: flash_attention(q, k, v, causal=True, backend="torch", block_size=4),
    "linear (chunked)": lambda q, k, v: linear_attention(q, k, v, causal=True, backend="chunked", chunk_size=4),
    "linear (prefix sums)": lambda q, k, v: linear_attention(q, k, v, causal=True, backend="torch"),
    "linear (recurrent)": lambda q, k, v: linear_attention(q, k, v, causal=True, backend="recurrent"),
    "performer": lambda q, k, v: performer_attention(q, k, v, 8, causal=True, backend="chunked"),
    "lola": lambda q, k, v: lola_attention(q, k, v),
}


@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("form", sorted(CAUSAL_ATTENTION))
def test_causal_attention_forms_refuse_or_stay_causal_under_non_finite_input(form, which):
    """A NaN at position 9 must never change outputs 0..8: each form refuses it or keeps them exactly."""
    fn = CAUSAL_ATTENTION[form]
    clean = _qkv()
    bad = [t.clone() for t in clean]
    bad["qkv".index(which)][:, :, 9] = float("nan")
    try:
        out = fn(*bad)
    except ValueError as err:
        assert f"{which} must be finite" in str(err) or f"p{which} must be finite" in str(err)
        return
    torch.testing.assert_close(out[:, :, :9], fn(*clean)[:, :, :9])


def _scan_inputs(L=12):
    return randn(1, 3, L), randn(1, 3, L).abs(), -randn(3, 4).abs(), randn(1, 4, L), randn(1, 4, L)


@pytest.mark.parametrize("which", ["u", "delta", "B", "C"])
@pytest.mark.parametrize("backend", ["sequential", "parallel", "chunked"])
def test_selective_scan_stays_causal_under_non_finite_input(backend, which):
    clean = _scan_inputs()
    bad = [t.clone() for t in clean]
    bad[("u", "delta", "A", "B", "C").index(which)][..., 9] = float("nan")
    out = selective_scan(*bad, backend=backend, chunk_size=4 if backend == "chunked" else None)
    torch.testing.assert_close(out[..., :9], selective_scan(*clean, backend="sequential")[..., :9])


def test_associative_scan_stays_causal_under_non_finite_input():
    a, b = randn(2, 12, 3).abs(), randn(2, 12, 3)
    a2, b2 = a.clone(), b.clone()
    a2[:, 9], b2[:, 10] = float("nan"), float("inf")
    torch.testing.assert_close(associative_scan(a2, b2)[:, :9], associative_scan(a, b)[:, :9])


def test_ssd_and_fft_convolution_refuse_non_finite_input_and_the_direct_sum_stays_causal():
    u, delta, A, B, C = randn(1, 2, 3, 8), randn(1, 2, 8).abs(), -randn(2).abs(), randn(1, 4, 8), randn(1, 4, 8)
    B[..., 6] = float("nan")
    with pytest.raises(ValueError, match="B must be finite"):
        ssd_chunked(u, delta, A, B, C, chunk_size=4)
    x, K = randn(2, 3, 10), randn(3, 10)
    x_bad = x.clone()
    x_bad[..., 7] = float("inf")
    with pytest.raises(ValueError, match=r"u must be finite.*direct_causal_conv"):
        fft_causal_conv(x_bad, K)
    torch.testing.assert_close(direct_causal_conv(x_bad, K)[..., :7], fft_causal_conv(x, K)[..., :7])
