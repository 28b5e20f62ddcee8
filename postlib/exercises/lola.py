"""Exercises of the LoLA page: two checkers and three questions.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_self_recall_error            ``fn(k, v, S, z) -> err``  ‖v − φ(k)ᵀS/φ(k)ᵀz‖ per cached pair
check_lola_read                    ``fn(q, k, v, valid, S, z) -> y``  exact cache + linear state, one normalisation
check_lola_cache_ratio             a number by hand: how much smaller than a KV cache
check_which_leaves                 a multiple choice: which pair leaves the sparse cache
predict_no_cache_recall            a prediction: LoLA without a sparse cache
=================================  ================================================================

Each checker compares with formulas written here (not with ``postlib.attention.lola``) on float64
inputs, and never prints the answer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction

EPS = 1e-6


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _phi(x):
    return F.elu(x) + 1


def _state(B, H, D, n, seed):
    """S, z of n earlier tokens folded into the linear state."""
    k, v = _randn(B, H, n, D, seed=seed), _randn(B, H, n, D, seed=seed + 1)
    return torch.einsum("bhjd,bhjv->bhdv", _phi(k), v), _phi(k).sum(2)


@exercise(points=2, difficulty=2, minutes=10, title="LoLA's self-recall error")
def check_self_recall_error(fn):
    """``fn(k, v, S, z)``: for cached pairs k, v (B, H, M, D) and the state S (B, H, D, D), z (B, H, D), the
    error ‖v_j − φ(k_j)ᵀS / (φ(k_j)ᵀz + 1e-6)‖ of each pair, shape (B, H, M); φ = elu + 1."""
    for i, (B, H, M, D) in enumerate(((1, 1, 1, 4), (2, 3, 5, 8), (1, 2, 9, 16))):
        k, v = _randn(B, H, M, D, seed=10 + i), _randn(B, H, M, D, seed=20 + i)
        S, z = _state(B, H, D, 7, 30 + i)
        out = expect_tensor(fn(k.clone(), v.clone(), S.clone(), z.clone()), f"the errors for M = {M}", (B, H, M))
        pk = _phi(k)
        recalled = (pk @ S) / ((pk * z[:, :, None]).sum(-1, keepdim=True) + EPS)
        want = (v - recalled).norm(dim=-1)
        if torch.allclose(out.double(), want, rtol=1e-8, atol=1e-10):
            continue
        if torch.allclose(out.double(), want ** 2, rtol=1e-8, atol=1e-10):
            raise Mismatch("that is the squared error: return the norm itself.")
        raw = (k @ S) / ((k * z[:, :, None]).sum(-1, keepdim=True) + EPS)
        if torch.allclose(out.double(), (v - raw).norm(dim=-1), rtol=1e-8, atol=1e-10):
            raise Mismatch("the state stores φ(k) = elu(k) + 1, so read it with φ(k_j), not k_j.")
        if torch.allclose(out.double(), (v - pk @ S).norm(dim=-1), rtol=1e-8, atol=1e-10):
            raise Mismatch("φ(k)ᵀS is a sum of values weighted by similarities: divide by φ(k)ᵀz to get an average.")
        raise Mismatch(f"for M = {M}, D = {D} the errors differ by up to {(out.double() - want).abs().max():.2e}.")


@exercise(points=3, difficulty=2, minutes=15, title="reading LoLA's memories")
def check_lola_read(fn):
    """``fn(q, k, v, valid, S, z)``: one query q (B, H, D) reads the cache k, v (B, H, M, D) — only the slots
    where ``valid`` (B, H, M) is True — exactly with weights exp(q·k_j/√D), and the linear state with φ(q),
    in one normalisation: y = [Σ_j w_j v_j + φ(q)ᵀS] / [Σ_j w_j + φ(q)ᵀz + 1e-6]."""
    for i, (B, H, M, D) in enumerate(((1, 1, 1, 4), (2, 3, 6, 8), (1, 2, 10, 16))):
        q, k, v = (_randn(B, H, *shape, seed=40 + 3 * i + j) for j, shape in enumerate(((D,), (M, D), (M, D))))
        valid = torch.rand(B, H, M, generator=torch.Generator().manual_seed(50 + i)) < 0.7
        valid[..., 0] = True
        S, z = _state(B, H, D, 5, 60 + i)
        out = expect_tensor(fn(q.clone(), k.clone(), v.clone(), valid.clone(), S.clone(), z.clone()),
                            f"y for M = {M}", (B, H, D)).double()
        w = torch.exp((k @ q[..., None])[..., 0] / math.sqrt(D)) * valid
        pq = _phi(q)
        exact_num, exact_den = (w[..., None] * v).sum(2), w.sum(-1)
        lin_num, lin_den = torch.einsum("bhd,bhdv->bhv", pq, S), (pq * z).sum(-1)
        want = (exact_num + lin_num) / (exact_den + lin_den + EPS)[..., None]
        if torch.allclose(out, want, rtol=1e-8, atol=1e-10):
            continue
        apart = 0.5 * (exact_num / exact_den[..., None] + lin_num / lin_den[..., None])
        if torch.allclose(out, apart, rtol=1e-6, atol=1e-8):
            raise Mismatch("you normalised the cache and the state separately and averaged them: add their "
                           "numerators and their denominators, then divide once.")
        w_all = torch.exp((k @ q[..., None])[..., 0] / math.sqrt(D))
        every = ((w_all[..., None] * v).sum(2) + lin_num) / (w_all.sum(-1) + lin_den + EPS)[..., None]
        if not bool(valid.all()) and torch.allclose(out, every, rtol=1e-8, atol=1e-10):
            raise Mismatch("an invalid slot (valid = False) holds no token: give it weight 0.")
        raise Mismatch(f"for M = {M}, D = {D} the output differs by up to {(out - want).abs().max():.2e}; the "
                       "exact part uses exp(q·k_j/√D).")


# --------------------------------------------------------------------------- questions

WINDOW, SPARSE, HEAD_DIM, CONTEXT = 64, 64, 128, 4096          # the head the page describes
KV_NUMBERS = 2 * CONTEXT * HEAD_DIM                            # a key and a value per token
CACHE_NUMBERS = 2 * (WINDOW + SPARSE) * HEAD_DIM               # LoLA's exact slots
STATE_NUMBERS = HEAD_DIM * HEAD_DIM + HEAD_DIM                 # S and z
RATIO = KV_NUMBERS / (CACHE_NUMBERS + STATE_NUMBERS)


@number_question(points=1, difficulty=2, minutes=10, title="LoLA's memory against a KV cache", rel_tol=0.01,
                 near={KV_NUMBERS / CACHE_NUMBERS / RATIO: "close, but LoLA also stores its linear state: "
                                                           "S (D × D) and z (D).",
                       0.5: "half of it: the KV cache stores a key *and* a value for each token."})
def check_lola_cache_ratio():
    """How many times fewer numbers one LoLA head stores (window + sparse keys and values, S and z) than a KV
    cache of the same head over the whole context."""
    return RATIO


check_which_leaves = choice_question(
    "check_which_leaves", options="abc", answer="5249720355e71915", points=1, difficulty=1, minutes=3,
    title="who leaves the sparse cache",
    hints={"a": "the oldest pair may be the one the state would blur most — the paper's ablation finds that "
                "evicting by age loses the recall the cache is for.",
           "c": "a large value is not a hard one: what matters is how well the state would recall it."})


def _closest(curves) -> str:
    """``curves`` from ``postlib.viz.lola.lola_recall_curves``: which reference LoLA without a cache is near."""
    no_cache = curves["lola"][0]
    to_soft, to_lin = abs(no_cache - curves["softmax"]), abs(no_cache - curves["linear"])
    middle = 0.5 * (curves["softmax"] + curves["linear"])
    gaps = {"a": to_soft, "b": to_lin, "c": abs(no_cache - middle)}
    return min(gaps, key=gaps.get)


predict_no_cache_recall = prediction(
    "predict_no_cache_recall", options="abc", answer="8bfbf469ff7f480d", observe=_closest,
    describe=lambda c: (f"a recall error of {c['lola'][0]:.2f} for LoLA without a sparse cache, against "
                        f"{c['softmax']:.2f} for softmax and {c['linear']:.2f} for linear attention"),
    points=1, difficulty=2, minutes=3, title="LoLA without a sparse cache",
    hints={"a": "the window holds only the last few tokens; the pairs asked for are older than that.",
           "c": "what holds the old pairs when the sparse cache has no room?"})
