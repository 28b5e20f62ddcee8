"""Exercises of the recurrent-causal chapter (Transformer-XL, RetNet, Mega).

Each checker calls the learner's function on float64 inputs at awkward sizes (length 1, primes, chunks that
do not divide the length), compares with postlib's reference, and answers with a hint that points at the
classic mistake without printing the answer.

=============================  ======================================================
checker                        the learner writes
=============================  ======================================================
check_decay_matrix             ``fn(gamma, length) -> D``                 (heads, L, L)
check_recurrent_retention      ``fn(q, k, v, gamma) -> o``                token by token
check_chunkwise_retention      ``fn(q, k, v, gamma, chunk_size) -> o``    O(L) memory
check_rel_shift                ``fn(x) -> shifted``                       Transformer-XL's trick
check_ema_kernel               ``fn(alpha, delta, beta, eta, length) -> K``  (dim, L)
check_dependency_reach         ``fn(length, segment_length, memory_length, n_layers) -> reach``
check_half_life                a number by hand: the half-life of a RetNet head
predict_vanilla_copy           a prediction before a run: copying beyond the segment
check_which_retention_form     a multiple choice: which form to train with
=============================  ======================================================
"""
from __future__ import annotations

import math

import torch

from ..recurrent.copy_task import dependency_reach
from ..recurrent.retention import decay_matrix, retention_parallel
from ..recurrent.transformer_xl import rel_shift
from ..ssm.ema import ema_kernel
from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction

GAMMAS = torch.tensor([0.5, 0.9, 1 - 2 ** -5], dtype=torch.float64)


def _qkv(B, H, L, D, Dv, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, H, L, D, generator=gen, dtype=torch.float64) * D ** -0.25 for _ in range(2))
    return q, k, torch.randn(B, H, L, Dv, generator=gen, dtype=torch.float64)


def _close(a, b, tol=1e-9) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


def _gap(out, ref) -> str:
    return f"{(out.double() - ref).abs().max().item():.2e}"


# --------------------------------------------------------------------------- 1. the decay matrix
@exercise(points=1, difficulty=1, minutes=10, title="retention's decay matrix D")
def check_decay_matrix(fn):
    """``fn(gamma, length)``: D (heads, length, length) with D[h, t, s] = γ_h^(t−s) for t ≥ s and 0 above."""
    for length in (1, 5, 13):
        out = expect_tensor(fn(GAMMAS.clone(), length), f"D for length {length}", (3, length, length))
        ref = decay_matrix(GAMMAS, length)
        if _close(out, ref):
            continue
        if _close(out, ref.transpose(-1, -2)):
            raise Mismatch("your matrix is transposed: row t is the query, column s the key, and a query sees only "
                           "keys s ≤ t (the lower triangle).")
        t = torch.arange(length, dtype=torch.float64)
        if _close(out, GAMMAS[:, None, None] ** (t[:, None] - t[None, :]).abs()):
            raise Mismatch("the future must be exactly 0: retention is causal, so D is lower triangular.")
        if _close(out, ref * GAMMAS[:, None, None]):
            raise Mismatch("off by one power of γ: a token weighs itself with γ^0 = 1 (the diagonal is 1).")
        raise Mismatch(f"for length {length} your D differs from γ^(t−s) by up to {_gap(out, ref)}.")


# --------------------------------------------------------------------------- 2. the recurrent form
@exercise(points=2, difficulty=2, minutes=15, title="retention, token by token")
def check_recurrent_retention(fn):
    """``fn(q, k, v, gamma)``: o_t = q_t S_t with S_t = γ S_(t−1) + k_tᵀ v_t, for (B, H, L, d) inputs."""
    for i, (B, H, L, D, Dv) in enumerate([(1, 3, 1, 4, 4), (2, 3, 7, 8, 5), (1, 3, 31, 6, 3)]):
        q, k, v = _qkv(B, H, L, D, Dv, seed=i)
        out = expect_tensor(fn(q.clone(), k.clone(), v.clone(), GAMMAS.clone()), f"the output for L = {L}",
                            (B, H, L, Dv))
        ref = retention_parallel(q, k, v, GAMMAS)
        if _close(out, ref):
            continue
        own = torch.einsum("bhtd,bhtd->bht", q, k)[..., None] * v            # the current token's term
        if _close(out, (ref - own) / GAMMAS[None, :, None, None]):
            raise Mismatch("you read the state before adding the current token: o_t = q_t S_t uses S_t, which "
                           "already holds k_tᵀ v_t.")
        scaled = retention_parallel(q, k, v, GAMMAS) * GAMMAS[None, :, None, None]
        if _close(out, scaled):
            raise Mismatch("the decay is applied to the new token too: update S ← γ S + k_tᵀ v_t, not "
                           "S ← γ (S + k_tᵀ v_t).")
        raise Mismatch(f"for L = {L} your output differs from the recurrence by up to {_gap(out, ref)}.")


# --------------------------------------------------------------------------- 3. the chunkwise form
@exercise(points=4, difficulty=3, minutes=35, title="chunkwise retention in O(L) memory")
def check_chunkwise_retention(fn):
    """``fn(q, k, v, gamma, chunk_size)``: retention computed chunk by chunk — exact, and without ever building
    an L × L matrix (its peak memory is measured)."""
    for i, (L, C) in enumerate([(1, 4), (13, 4), (29, 7), (64, 16), (40, 64)]):
        q, k, v = _qkv(2, 3, L, 8, 5, seed=10 + i)
        out = expect_tensor(fn(q.clone(), k.clone(), v.clone(), GAMMAS.clone(), C),
                            f"the output for L = {L}, chunk_size = {C}", (2, 3, L, 5))
        ref = retention_parallel(q, k, v, GAMMAS)
        if _close(out, ref):
            continue
        if L > C and _close(out[:, :, :C], ref[:, :, :C]):
            raise Mismatch(f"your first chunk is right, the later ones are not (L = {L}, chunk {C}): check how "
                           "far the carried state must decay to reach token i of a chunk (γ^(i+1) from the "
                           "end of the previous chunk), and how each chunk's keys decay to its end.")
        raise Mismatch(f"for L = {L}, chunk_size = {C} your output differs from retention by up to {_gap(out, ref)}.")
    from ..bench.core import peak_memory
    L = 2048
    q, k, v = _qkv(1, 1, L, 16, 16, seed=99)
    peak = peak_memory(lambda: fn(q, k, v, GAMMAS[:1].clone(), 64))
    if peak > L * L * 8 / 4:
        raise Mismatch(f"at L = {L} your function allocated {peak / 2**20:.0f} MiB — an L × L matrix is "
                       f"{L * L * 8 / 2**20:.0f} MiB. Inside a chunk a C × C block suffices; across chunks, carry "
                       "the d_k × d_v state.")


# --------------------------------------------------------------------------- 4. the relative shift
@exercise(points=2, difficulty=2, minutes=20, title="Transformer-XL's relative shift")
def check_rel_shift(fn):
    """``fn(x)``: x (..., L, K) with column m holding distance K−1−m; return y with y[..., i, j] = x[..., i,
    j + L − 1 − i] wherever j ≤ K − L + i (other entries are not checked)."""
    for L, K in [(1, 1), (3, 3), (4, 9), (5, 6)]:
        x = torch.randn(2, 3, L, K, dtype=torch.float64)
        out = expect_tensor(fn(x.clone()), f"the output for L = {L}, K = {K}", (2, 3, L, K))
        ref = rel_shift(x)
        i, j = torch.meshgrid(torch.arange(L), torch.arange(K), indexing="ij")
        visible = j <= K - L + i
        if torch.allclose(out[..., visible], ref[..., visible]):
            continue
        if L > 1 and torch.allclose(out[..., visible], x[..., visible]):
            raise Mismatch("nothing moved: row i must move left by L − 1 − i (the last row stays).")
        raise Mismatch(f"for L = {L}, K = {K}: row i should read column j + L − 1 − i at key j. Try the trick: pad "
                       "one zero column on the left, view the block as (K + 1, L), drop a row, view it back.")


# --------------------------------------------------------------------------- 5. the EMA kernel
@exercise(points=1, difficulty=1, minutes=10, title="Mega's EMA kernel", forbid=["torch.fft.irfft", "torch.fft.rfft"])
def check_ema_kernel(fn):
    """``fn(alpha, delta, beta, eta, length)``: K (dim, length), K_t = Σ_h η α β (1 − αδ)^t."""
    gen = torch.Generator().manual_seed(3)
    alpha, delta = (torch.rand(4, 3, generator=gen, dtype=torch.float64) * 0.8 + 0.1 for _ in range(2))
    beta, eta = (torch.randn(4, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    for length in (1, 7, 30):
        out = expect_tensor(fn(alpha, delta, beta, eta, length), f"K for length {length}", (4, length))
        ref = ema_kernel(alpha, delta, beta, eta, length)
        if _close(out, ref):
            continue
        t = torch.arange(length, dtype=torch.float64)
        if _close(out, (eta * alpha * beta)[..., None].mul(((1 - alpha) * delta)[..., None] ** t).sum(1)):
            raise Mismatch("that is the damping ((1 − α)δ)^t of some re-implementations; Mega's is (1 − αδ)^t — δ "
                           "damps α inside the decay.")
        if _close(out, (alpha * beta)[..., None].mul((1 - alpha * delta)[..., None] ** t).sum(1)):
            raise Mismatch("each of the h dimensions is projected back with its own weight η before the sum.")
        raise Mismatch(f"for length {length} your kernel differs from Σ_h ηαβ(1 − αδ)^t by up to {_gap(out, ref)}.")


# --------------------------------------------------------------------------- 6. the reach of a memory
@exercise(points=2, difficulty=2, minutes=15, title="Transformer-XL's reach")
def check_dependency_reach(fn):
    """``fn(length, segment_length, memory_length, n_layers)``: a length-L sequence of ints, the largest distance
    p − j such that the output at p can depend on the input at j."""
    for args in [(1, 1, 0, 1), (12, 4, 0, 3), (12, 4, 4, 1), (20, 4, 4, 3), (17, 5, 3, 2), (10, 3, 7, 2)]:
        got = fn(*args)
        ref = dependency_reach(*args)
        try:
            got = torch.as_tensor(got).long().flatten()
        except Exception:  # noqa: BLE001 - any unconvertible answer is a wrong answer
            raise Mismatch(f"return a sequence of {args[0]} integers, got {type(got).__name__}.") from None
        if tuple(got.shape) != tuple(ref.shape):
            raise Mismatch(f"for length {args[0]} return {args[0]} numbers, one per position, got {got.numel()}.")
        if torch.equal(got, ref):
            continue
        length, S, M, N = args
        if M and torch.equal(got, dependency_reach(length, S, M, 1)):
            raise Mismatch("right for one layer. With N layers, layer n's memory holds states that already saw "
                           "further back: follow the window down N times.")
        raise Mismatch(f"for length={length}, segment={S}, memory={M}, layers={N} your reach differs at positions "
                       f"{(got != ref).nonzero().flatten()[:5].tolist()}.")


# --------------------------------------------------------------------------- 7. a number by hand
@number_question(points=1, difficulty=1, minutes=5, title="half-life of a RetNet head", rel_tol=0.02,
                 near={256 / 177.09: "that is 1/(1 − γ), the total weight Σ γ^d; the half-life is where γ^d = ½.",
                       128 / 177.09: "close to 1/(2(1 − γ)); solve γ^d = ½ with a logarithm instead."})
def check_half_life():
    """Tokens after which the head with γ = 1 − 2^(−8) keeps half the weight: log ½ / log γ."""
    return math.log(0.5) / math.log(1 - 2 ** -8)


# --------------------------------------------------------------------------- 8. a prediction before a run
def _copy_option(accuracy: float) -> str:
    return "a" if accuracy < 0.15 else ("b" if accuracy < 0.85 else "c")


predict_vanilla_copy = prediction(
    "predict_vanilla_copy", options="abc", answer="dfa96bf4e13025c1", observe=_copy_option,
    describe=lambda acc: f"the vanilla segment model copied {acc:.0%} of the tokens (chance: 1/16 ≈ 6%)",
    points=1, difficulty=1, minutes=3, title="copying beyond the segment",
    hints={"b": "a token at offset i of its segment sees only i earlier tokens: is any of them 12 back?",
           "c": "with no memory, nothing of the previous segment reaches the current one."})


# --------------------------------------------------------------------------- 9. which form when
check_which_retention_form = choice_question(
    "check_which_retention_form", options="abc", answer="b28a4280607c3244", points=1, difficulty=1, minutes=3,
    title="which retention form to train with",
    hints={"a": "(QKᵀ ⊙ D)V holds L² numbers per head: 1 GiB at 16k tokens in fp32, per head and sequence.",
           "b": "token by token is O(L) memory, but L sequential steps leave the GPU idle: training would crawl."})
