"""Exercises of the outlook chapter (chapters/07_lab/outlook.md): roofline, long context, probes.

=============================  ======================================================
checker                        the learner writes
=============================  ======================================================
check_attainable               ``fn(intensity, peak, bandwidth) -> FLOP/s``  the roofline
check_stream_segments          ``fn(segments) -> out``  causal linear attention, state carried
check_topk_attention           ``fn(q, keys, values, k) -> out``  retrieval attention
check_state_half_life          a number by hand: tokens until half a stored value is left
check_fused_scan_intensity     a number by hand: FLOPs per byte of the fused scan
check_which_bound              a multiple choice: memory- or compute-bound on a GPU
=============================  ======================================================
"""
from __future__ import annotations

import math

import torch

from ..attention.linear import EPS, causal_prefix_sum
from ..outlook.long_context import topk_attention
from ..outlook.roofline import Shape, attainable, intensity
from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question


def _close(a, b, tol=1e-9) -> bool:
    from ..testing import rel_rms
    return rel_rms(b, a) <= tol


# --------------------------------------------------------------------------- 1. the roofline

@exercise(points=1, difficulty=1, minutes=5, title="the roofline")
def check_attainable(fn):
    """``fn(intensity, peak, bandwidth)``: the highest FLOP/s a kernel of ``intensity`` FLOP/byte can reach
    on a machine of ``peak`` FLOP/s and ``bandwidth`` byte/s."""
    for i, p, b in [(0.1, 1e11, 2e10), (5.0, 1e11, 2e10), (100.0, 1e11, 2e10), (1.0, 1e12, 1e12), (1e-3, 5e14, 3e12)]:
        got = fn(i, p, b)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Mismatch(f"return a number (FLOP/s), got {type(got).__name__}.")
        want = attainable(i, p, b)
        if math.isclose(got, want, rel_tol=1e-9):
            continue
        if math.isclose(got, max(p, i * b), rel_tol=1e-9):
            raise Mismatch("a kernel is held back by whichever limit it hits first: the smaller of the two roofs.")
        if math.isclose(got, min(p, i / b), rel_tol=1e-9) or math.isclose(got, min(p, b / i), rel_tol=1e-9):
            raise Mismatch("check the units: FLOP/byte times byte/s gives FLOP/s.")
        raise Mismatch(f"for intensity {i} FLOP/B, peak {p:.3g} FLOP/s, bandwidth {b:.3g} B/s your answer is "
                       f"{got / want:.3g}× the expected one.")


# --------------------------------------------------------------------------- 2. streaming with a carried state

def _segments(lengths, seed, heads=2, dk=5, dv=3):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        pq, pk = (torch.rand(1, heads, n, dk, generator=g, dtype=torch.float64) + 0.1 for _ in range(2))
        out.append((pq, pk, torch.randn(1, heads, n, dv, generator=g, dtype=torch.float64)))
    return out


@exercise(points=3, difficulty=2, minutes=20, title="streaming with a carried state")
def check_stream_segments(fn):
    """``fn(segments)``: causal linear attention over a list of segments ``(φ(q), φ(k), v)``, each
    (1, heads, n_i, d), processed one after another: return the outputs of all tokens concatenated
    along the length, (1, heads, Σ n_i, d_v). Use out_t = φ(q_t)ᵀS_t / (φ(q_t)ᵀz_t + eps) with
    eps = ``postlib.attention.linear.EPS``; S_t, z_t sum φ(k_j)v_jᵀ and φ(k_j) over every j ≤ t."""
    for lengths, seed in [([1], 0), ([3, 1, 4], 1), ([7, 7, 2, 11], 2)]:
        segs = _segments(lengths, seed)
        cat = [torch.cat([s[i] for s in segs], dim=2) for i in range(3)]
        want = causal_prefix_sum(*cat, eps=EPS)
        got = expect_tensor(fn([tuple(t.clone() for t in s) for s in segs]), "the output",
                            (1, 2, sum(lengths), 3))
        if _close(got, want):
            continue
        reset = torch.cat([causal_prefix_sum(*s, eps=EPS) for s in segs], dim=2)
        if _close(got, reset):
            raise Mismatch("each segment starts from zero: carry S and z from one segment into the next.")
        first = lengths[0]
        if _close(got[:, :, :first], want[:, :, :first]):
            raise Mismatch("the first segment is right; check what the next segments start from.")
        raise Mismatch(f"for segments of lengths {lengths} the output differs from causal linear attention over "
                       "the whole sequence: is token t's own key in S_t and z_t?")


# --------------------------------------------------------------------------- 3. retrieval attention

@exercise(points=2, difficulty=2, minutes=15, title="top-k retrieval attention")
def check_topk_attention(fn):
    """``fn(q, keys, values, k)``: q (n, D), keys (M, D), values (M, Dv). Each query attends with softmax
    (scale 1/√D) over only its ``k`` highest-scoring keys; return (n, Dv). ``k >= M``: all keys."""
    g = torch.Generator().manual_seed(3)
    for n, M, D, Dv, k in [(1, 1, 2, 1, 1), (3, 17, 4, 3, 5), (5, 40, 8, 6, 1), (2, 9, 3, 2, 20)]:
        q, keys = torch.randn(n, D, generator=g, dtype=torch.float64), torch.randn(M, D, generator=g, dtype=torch.float64)
        values = torch.randn(M, Dv, generator=g, dtype=torch.float64)
        want = topk_attention(q, keys, values, k)
        got = expect_tensor(fn(q, keys, values, k), "the output", (n, Dv))
        if _close(got, want):
            continue
        scores = q @ keys.T / math.sqrt(D)
        kk = min(k, M)
        top = scores.topk(kk, dim=1)
        full_w = torch.softmax(scores, dim=1).gather(1, top.indices)
        not_renormalised = torch.einsum("nk,nkv->nv", full_w, values[top.indices])
        if _close(got, not_renormalised):
            raise Mismatch("the weights of the k kept keys should sum to 1: take the softmax over the kept scores.")
        unscaled = torch.einsum("nk,nkv->nv", torch.softmax((q @ keys.T).gather(1, (q @ keys.T).topk(kk, 1).indices), 1),
                                values[(q @ keys.T).topk(kk, 1).indices])
        if _close(got, unscaled):
            raise Mismatch("scale the scores by 1/√D before the softmax.")
        raise Mismatch(f"with n={n}, M={M}, k={k} the output differs: keep the k largest scores of each query "
                       "(and all of them when k >= M).")


# --------------------------------------------------------------------------- 4. a number by hand: half-life

HALF_LIFE_A, HALF_LIFE_DELTA = -1.0, 0.05          # the channel the chapter describes


@number_question(points=1, difficulty=1, minutes=5, title="half-life of a state", rel_tol=0.02,
                 near={1 / math.log(2): "that is the time to fall to 1/e; the question asks for one half.",
                       math.log(2): "the decay per token is exp(Δ·A): divide ln 2 by |Δ·A|, do not multiply.",
                       HALF_LIFE_DELTA ** 2 / math.log(2) * math.log(2): "check how Δ enters the exponent."})
def check_state_half_life():
    """Tokens until exp(Δ·A)^t = 1/2: t = ln 2 / (Δ·|A|)."""
    return math.log(2) / (HALF_LIFE_DELTA * abs(HALF_LIFE_A))


# --------------------------------------------------------------------------- 5. a number by hand: intensity

SCAN_DIM, SCAN_STATE, SCAN_ITEMSIZE = 1024, 16, 2  # d channels, N states, bf16


@number_question(points=2, difficulty=2, minutes=10, title="intensity of the fused scan", rel_tol=0.02,
                 near={2.0: "bf16 stores a number in 2 bytes, not 4.", 0.5: "bf16 stores a number in 2 bytes, not 1.",
                       3 / 2: "count u, Δ and y once each, and B and C (N numbers per step each) too."})
def check_fused_scan_intensity():
    """8 FLOPs per (channel, state, step); bytes: u, Δ read and y written (d per step), B, C read (N per step)."""
    return intensity("scan (fused kernel)", Shape(length=4096, dim=SCAN_DIM, groups=1, state=SCAN_STATE,
                                                  itemsize=SCAN_ITEMSIZE))


# --------------------------------------------------------------------------- 6. which roof

check_which_bound = choice_question(
    "check_which_bound", options="abc", answer="789aa98ccb7fb1c2", points=1, difficulty=2, minutes=5,
    title="which roof holds the fused scan",
    hints={"a": "compare the kernel's FLOPs per byte with the machine's ridge point: which side is it on?",
           "c": "latency matters for tiny launches; at L in the thousands a memory roof or a compute roof binds."})
