"""Exercises of the "Kernel attention" chapter: five checkers and three questions.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_linear_attention             ``fn(q, k, v) -> out``  non-causal, φ = elu+1, (B, H, L, D)
check_linear_attention_rnn         ``fn(q, k, v) -> out``  causal, by a loop over a (S, z) state
check_chunk_update                 ``fn(pq, pk, v, S, z) -> (out, S_new, z_new)``  one chunk
check_positive_features            ``fn(x, omega) -> phi``  FAVOR+ features, (..., m)
check_kernel_trick_cost            ``fn(length, dim) -> (quadratic, linear)``  multiply-adds
check_linear_state_mib             a number by hand: MiB of a linear-attention model's state
predict_favor_average              a prediction: what averaging many draws' outputs converges to
check_which_stabiliser             a multiple choice: the causal fix for FAVOR+'s collapse
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
from .questions import choice_question, number_question, prediction

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
        if _close(out, _read_before_update(q, k, v), 1e-6):
            raise Mismatch("each output misses its own token: at step t add φ(k_t)v_tᵀ and φ(k_t) to S and z "
                           "*before* reading them with φ(q_t).")
        if _close(out[:, :, :1], ref[:, :, :1], 1e-6):
            raise Mismatch("the first token is right but later ones are not: do S and z keep *accumulating* "
                           "over the tokens, S_t = S_(t−1) + φ(k_t)v_tᵀ?")
        raise Mismatch(f"for shape {shape[:4]} the output differs by up to {(out - ref).abs().max():.2e}.")


def _read_before_update(q, k, v, eps=1e-6):
    """The classic slip: reading the state of tokens < t at step t (the state is updated afterwards)."""
    pq, pk = apply_feature_map(q), apply_feature_map(k)
    kv = torch.cumsum(torch.einsum("bhjd,bhjv->bhjdv", pk, v), 2) - torch.einsum("bhjd,bhjv->bhjdv", pk, v)
    z = torch.cumsum(pk, 2) - pk
    return torch.einsum("bhid,bhidv->bhiv", pq, kv) / (torch.einsum("bhid,bhid->bhi", pq, z)[..., None] + eps)


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


# --------------------------------------------------------------------------- questions

STATE_LAYERS, STATE_HEADS, STATE_HEAD_DIM, STATE_BYTES = 32, 32, 128, 2      # the model the chapter describes


@number_question(points=1, difficulty=2, minutes=10, title="the size of a linear-attention state", rel_tol=0.01,
                 near={2.0: "twice too large: fp16 stores a number in 2 bytes.",
                       1 / STATE_LAYERS: "too small by a factor of 32: every head of every layer keeps its own "
                                         "S and z (32 layers, 32 heads).",
                       0.5: "half of it: a number in fp16 takes 2 bytes."})
def check_linear_state_mib():
    """MiB of the recurrent state (S and z of every head of every layer) for one sequence, fp16."""
    per_head = STATE_HEAD_DIM * STATE_HEAD_DIM + STATE_HEAD_DIM
    return STATE_LAYERS * STATE_HEADS * per_head * STATE_BYTES / 2**20


def _average_option(errors) -> str:
    """``errors``: relative errors of the average of the first n outputs, for n = 1, 2, ... (a sequence)."""
    early, last = float(errors[9]), float(errors[-1])
    if last < 0.5 * early:
        return "a"
    return "c" if last > 1.5 * early else "b"


predict_favor_average = prediction(
    "predict_favor_average", options="abc", answer="829de6066438e138", observe=_average_option,
    describe=lambda e: (f"a relative error of {float(e[9]):.2f} after averaging 10 draws' outputs and "
                        f"{float(e[-1]):.2f} after {len(e)}"),
    points=1, difficulty=2, minutes=3, title="averaging Performer draws",
    hints={"a": "each output is a ratio of two unbiased estimates — is a ratio of unbiased estimates unbiased?",
           "c": "the average of bounded outputs cannot drift away: each output is a weighted mean of v."})


check_which_stabiliser = choice_question(
    "check_which_stabiliser", options="abc", answer="8065d99fb6228ec7", points=1, difficulty=2, minutes=5,
    title="a causal fix for FAVOR+'s collapse",
    hints={"a": "the maximum over all keys includes later ones: an earlier output would then depend on the "
                "future (and a large later key would underflow every earlier one).",
           "c": "a larger eps is what already happens: when every feature underflows, eps dominates the "
                "denominator and the output shrinks towards 0."})
