"""Exercises of the "Kernel attention" chapter: five checkers.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_linear_attention             ``fn(q, k, v) -> out``  non-causal, φ = elu+1, (B, H, L, D)
check_linear_attention_rnn         ``fn(q, k, v) -> out``  causal, by a loop over a (S, z) state
check_chunk_update                 ``fn(pq, pk, v, S, z) -> (out, S_new, z_new)``  one chunk
check_positive_features            ``fn(x, omega) -> phi``  FAVOR+ features, (..., m)
check_kernel_trick_cost            ``fn(length, dim) -> (quadratic, linear)``  multiply-adds
=================================  ================================================================

Each compares with ``postlib.attention.linear`` / ``performer`` on float64 inputs with awkward
lengths and never prints the answer (see ``postlib.exercises.run_checker``).
"""
from __future__ import annotations

import math

import torch

from ..attention.linear import apply_feature_map, causal_chunked, linear_attention
from ..attention.performer import gaussian_projection, softmax_kernel_features
from .core import Mismatch, exercise, expect_tensor

SHAPES = [(1, 1, 1, 4, 4), (2, 3, 7, 8, 5), (1, 2, 63, 16, 16)]     # (B, H, L, D, Dv)


def _qkv(shape, seed):
    b, h, L, d, dv = shape
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, L, d, generator=g, dtype=torch.float64),
            torch.randn(b, h, L, d, generator=g, dtype=torch.float64),
            torch.randn(b, h, L, dv, generator=g, dtype=torch.float64))


def _tensor(out, what, shape):
    return expect_tensor(out, what, shape).double()


def _close(a, b, tol=1e-8):
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))


@exercise(points=2, difficulty=1, minutes=10, title="linear attention (non-causal)")
def check_linear_attention(fn):
    """Non-causal linear attention φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1) with φ = elu + 1 (eps = 1e-6 allowed)."""
    for i, shape in enumerate(SHAPES):
        q, k, v = _qkv(shape, i)
        out = _tensor(fn(q, k, v), f"the output for q {tuple(q.shape)}", (*shape[:3], shape[4]))
        ref = linear_attention(q, k, v)
        if _close(out, ref, 1e-6):
            continue
        if _close(out, torch.einsum("bhid,bhdv->bhiv", apply_feature_map(q),
                                    torch.einsum("bhjd,bhjv->bhdv", apply_feature_map(k), v)), 1e-6):
            raise Mismatch("the numerator is right; each row still has to be divided by φ(q_i)·Σ_j φ(k_j).")
        if _close(out, linear_attention(q, k, v, feature_map="identity"), 1e-6):
            raise Mismatch("apply the feature map φ(x) = elu(x) + 1 to q and k first.")
        raise Mismatch(f"for shape {shape[:4]} the output differs by up to {(out - ref).abs().max():.2e}.")


@exercise(points=3, difficulty=2, minutes=15, title="causal linear attention as an RNN")
def check_linear_attention_rnn(fn):
    """Causal linear attention computed token by token with the state S_t, z_t."""
    for i, shape in enumerate(SHAPES):
        q, k, v = _qkv(shape, 10 + i)
        out = _tensor(fn(q, k, v), f"the output for q {tuple(q.shape)}", (*shape[:3], shape[4]))
        ref = linear_attention(q, k, v, causal=True, backend="recurrent")
        if _close(out, ref, 1e-6):
            continue
        if _close(out, linear_attention(q, k, v), 1e-6):
            raise Mismatch("this is the non-causal result: token t may only use keys and values up to t.")
        first_ok = _close(out[:, :, :1], ref[:, :, :1], 1e-6)
        raise Mismatch("the first token is right but later ones are not: update S and z *before* reading them "
                       "at step t." if first_ok else
                       f"for shape {shape[:4]} the output differs by up to {(out - ref).abs().max():.2e}.")


@exercise(points=4, difficulty=3, minutes=25, title="one chunk of chunked linear attention")
def check_chunk_update(fn):
    """One chunk of the chunked causal form: given mapped features of the chunk and the carried (S, z),
    return the chunk's outputs and the new (S, z)."""
    for i, (L, C) in enumerate(((5, 5), (13, 4), (1, 1))):
        q, k, v = _qkv((1, 2, L, 6, 3), 20 + i)
        pq, pk = apply_feature_map(q), apply_feature_map(k)
        # a state carried from earlier tokens: S = Σ φ(k_j) v_jᵀ, z = Σ φ(k_j) over 3 random past tokens
        past_k, _, past_v = _qkv((1, 2, 3, 6, 3), 30 + i)
        S = torch.einsum("bhjd,bhjv->bhdv", apply_feature_map(past_k), past_v)
        z = apply_feature_map(past_k).sum(2)
        got = fn(pq[:, :, :C], pk[:, :, :C], v[:, :, :C], S.clone(), z.clone())
        if not (isinstance(got, tuple) and len(got) == 3):
            raise Mismatch("return a tuple (out, S_new, z_new).")
        ref, (S_ref, z_ref) = causal_chunked(pq[:, :, :C], pk[:, :, :C], v[:, :, :C], chunk_size=C, state=(S, z))
        out = _tensor(got[0], "out", ref.shape)
        if not _close(_tensor(got[1], "S_new", S_ref.shape), S_ref):
            raise Mismatch("S_new should be S plus the sum over the chunk of φ(k_j) v_jᵀ.")
        if not _close(_tensor(got[2], "z_new", z_ref.shape), z_ref):
            raise Mismatch("z_new should be z plus the sum over the chunk of φ(k_j).")
        if not _close(out, ref, 1e-6):
            raise Mismatch("the state update is right but the outputs are not: inside the chunk use the masked "
                           "(lower-triangular, diagonal included) φ(Q_c)φ(K_c)ᵀ, and add φ(Q_c)S for the past.")


@exercise(points=3, difficulty=2, minutes=15, title="positive random features (FAVOR+)")
def check_positive_features(fn):
    """FAVOR+ positive random features: φ(x)ᵀφ(y) must be an unbiased estimate of exp(xᵀy)."""
    g = torch.Generator().manual_seed(3)
    for m, d in ((1, 4), (7, 8), (64, 16)):
        x = torch.randn(5, d, generator=g, dtype=torch.float64) * 0.5
        w = gaussian_projection(m, d, orthogonal=False, seed=m)
        out = _tensor(fn(x, w), f"φ(x) for x (5, {d}) and omega ({m}, {d})", (5, m))
        ref = softmax_kernel_features(x, w)
        if _close(out, ref):
            continue
        if _close(out, ref * math.sqrt(m)):
            raise Mismatch("almost: the estimate averages over m features — where does 1/√m go?")
        if _close(out, torch.exp(x @ w.T) / math.sqrt(m)):
            raise Mismatch("exp(ωᵀx) alone is biased: E[exp(ωᵀx)] = exp(|x|²/2). Correct for it.")
        if (out <= 0).any():
            raise Mismatch("positive features must be positive everywhere.")
        raise Mismatch(f"for m = {m}, d = {d} the features differ from the reference.")


@exercise(points=1, difficulty=1, minutes=5, title="cost of the kernel trick")
def check_kernel_trick_cost(fn):
    """Multiply-adds of (φ(Q)φ(K)ᵀ)V vs φ(Q)(φ(K)ᵀV) for L tokens of dimension d (numerators only)."""
    for L, d in ((1, 1), (7, 3), (1024, 64), (100, 500)):
        got = fn(L, d)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mismatch("return a tuple (quadratic_cost, linear_cost).")
        want = (2 * L * L * d, 2 * L * d * d)
        if tuple(int(x) for x in got) == want:
            continue
        if int(got[0]) == want[0]:
            raise Mismatch("the quadratic cost is right. For the linear form: what are the shapes of φ(K)ᵀV and "
                           "of the product with φ(Q)?")
        raise Mismatch(f"for L = {L}, d = {d}: count the multiply-adds of both matrix products in each order.")
