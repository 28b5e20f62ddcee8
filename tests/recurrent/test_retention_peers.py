"""Retention cross-checked against independent implementations. Each test states the conventions it bridges."""
import math

import pytest
import torch

from postlib.recurrent.retention import retention, retnet_gammas
from postlib.recurrent.retnet import normalise_retention, rotate, rotation_angles
from postlib.testing import rel_rms


def _qkv(B, H, L, D, Dv, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, L, d, generator=g, dtype=dtype) for d in (D, D, Dv))


def _official_rel_pos(H, D, L):
    """torchscale's RetNetRelPos (parallel branch) written out, because importing it needs fairscale and timm:
    angle_i = 1/10000^linspace(0, 1, D/2) repeated for each channel pair; decay_h = log(1 − 2^(−5−h));
    mask_nm = exp((n − m) decay_h) for n ≥ m, divided by √(Σ_m mask_nm) (the D̃ scaling)."""
    angle = (1.0 / (10000 ** torch.linspace(0, 1, D // 2, dtype=torch.float64))).repeat_interleave(2)
    decay = torch.log(1 - 2 ** (-5 - torch.arange(H, dtype=torch.float64)))
    index = torch.arange(L, dtype=torch.float64)
    sin, cos = torch.sin(index[:, None] * angle), torch.cos(index[:, None] * angle)
    dist = index[:, None] - index[None, :]
    mask = torch.exp(dist.masked_fill(dist < 0, float("inf")) * decay[:, None, None])
    mask = torch.nan_to_num(mask)
    return sin, cos, mask / mask.sum(-1, keepdim=True).sqrt()


def _official_layer(ms, H, D, Dv):
    from types import SimpleNamespace
    args = SimpleNamespace(multiway=False, layernorm_eps=1e-6)
    return ms.MultiScaleRetention(args, embed_dim=H * D, value_dim=H * Dv, num_heads=H).double()


def test_torchscale_multiscale_retention_parallel_forward():
    """torchscale (the paper's official code), ``MultiScaleRetention.parallel_forward``: the rotation
    ``theta_shift`` (pairs turned by nθ) ≡ our ``rotate``; then (QKᵀ ⊙ D̃) with rows divided by
    max(|row sum|, 1) (it detaches that divisor; the value is the same) ≡ our raw retention on [V, 1] followed by
    ``normalise_retention``. Its k arrives pre-scaled by 1/√d, as in its ``forward``. Its v is (B, L, H·d_v)."""
    ms = pytest.importorskip("torchscale.component.multiscale_retention")
    B, H, L, D, Dv = 2, 3, 37, 8, 6
    q, k, v = _qkv(B, H, L, D, Dv)
    k = k / math.sqrt(D)
    sin, cos, mask = _official_rel_pos(H, D, L)
    qr, kr = ms.theta_shift(q, sin, cos), ms.theta_shift(k, sin, cos)
    positions = torch.arange(L)
    angles = rotation_angles(D)
    assert rel_rms(qr, rotate(q, positions, angles)) < 1e-13
    layer = _official_layer(ms, H, D, Dv)
    theirs = layer.parallel_forward(qr, kr, v.transpose(1, 2).reshape(B, L, H * Dv), mask).transpose(1, 2)
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
    raw = retention(qr, kr, v1, retnet_gammas(H, torch.float64), backend="chunkwise", chunk_size=8)
    ours = normalise_retention(raw, retnet_gammas(H, torch.float64), positions)
    assert rel_rms(theirs, ours) < 1e-12


def test_torchscale_recurrent_decoding_differs_only_by_a_per_head_scale():
    """torchscale's ``recurrent_forward`` normalises differently from its parallel form (it rescales the state by
    the running √(Σ γ^i) and skips the max(|·|, 1) bound): the outputs differ by one positive number per
    (position, head), which the group norm removes. We check exactly that: after dividing each head's output by
    its RMS, its recurrent decode ≡ our normalised retention."""
    ms = pytest.importorskip("torchscale.component.multiscale_retention")
    B, H, L, D, Dv = 1, 3, 20, 8, 4
    q, k, v = _qkv(B, H, L, D, Dv, seed=1)
    k = k / math.sqrt(D)
    layer = _official_layer(ms, H, D, Dv)
    decay = torch.tensor(retnet_gammas(H, torch.float64).tolist(), dtype=torch.float64)
    state, outs = {}, []
    for t in range(L):
        outs.append(layer.recurrent_forward(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t].reshape(B, 1, H * Dv),
                                            decay, state))
    theirs = torch.stack(outs, dim=2)                                  # each step gives (B, H, Dv)
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
    ours = normalise_retention(retention(q, k, v1, decay, backend="recurrent"), decay, torch.arange(L))
    rms = lambda x: x / x.pow(2).mean(-1, keepdim=True).sqrt()
    assert rel_rms(rms(theirs), rms(ours)) < 1e-12
    assert rel_rms(theirs, ours) > 1e-3                              # the raw outputs really are scaled differently


def test_fla_naive_retention():
    """fla-core's ``naive_retention(q, k, v)``: head-first (B, H, T, K) tensors, γ_h = 1 − 2^(−5−h) fixed inside,
    q multiplied by K^(−1/2), and it computes in float32 whatever the input dtype. Ours takes γ and no scale."""
    naive = pytest.importorskip("fla.ops.retention.naive")
    B, H, L, D, Dv = 2, 4, 45, 16, 8
    q, k, v = _qkv(B, H, L, D, Dv, seed=2, dtype=torch.float32)
    theirs = naive.naive_retention(q, k, v)
    ours = retention(q.double() * D ** -0.5, k.double(), v.double(), retnet_gammas(H, torch.float64))
    assert rel_rms(ours, theirs) < 1e-5


def test_yet_another_retnet_parallel_recurrent_and_chunkwise():
    """yet-another-retnet: γ_h = 1 − exp(linspace(log 1/32, log 1/512, H)) — log-spaced between 1 − 2^−5 and
    1 − 2^−9 whatever H is, *not* the paper's 1 − 2^(−5−h) (equal only for H = 5); keys divided by √d; no D
    scaling and no row-sum bound (raw retention). Its recurrent form returns the state S_t (d_k × d_v)."""
    yar = pytest.importorskip("yet_another_retnet.retention")
    B, H, L, D, Dv = 2, 3, 29, 8, 6
    q, k, v = _qkv(B, H, L, D, Dv, seed=3)
    gamma = 1 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), H, dtype=torch.float64))
    assert torch.allclose(retnet_gammas(5, torch.float64),
                          1 - torch.exp(torch.linspace(math.log(1 / 32), math.log(1 / 512), 5, dtype=torch.float64)))
    ours = retention(q, k / math.sqrt(D), v, gamma, backend="chunkwise", chunk_size=8)
    theirs, _ = yar.retention_parallel(q, k, v)
    assert rel_rms(ours, theirs) < 1e-12
    state, outs = None, []
    for t in range(L):
        o, state = yar.retention_recurrent(q[:, :, t], k[:, :, t], v[:, :, t], state)
        outs.append(o)
    assert rel_rms(ours, torch.stack(outs, dim=2)) < 1e-12
