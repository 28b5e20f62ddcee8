"""Exercises of the "Low rank and hashing" chapter: five checkers and three questions.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_linformer                    ``fn(q, k, v, E, F) -> out``  Eq. 7 of Linformer
check_best_rank_k                  ``fn(P, k) -> P_k``  best rank-k approximation of a matrix
check_lsh_hash                     ``fn(x, R) -> buckets``  h(x) = argmax([xR; −xR])
check_sort_by_bucket               ``fn(buckets) -> order``  stable sort by (bucket, position)
check_reversible_inverse           ``fn(y1, y2, f, g) -> (x1, x2)``  undo a reversible layer
check_collision_in_rounds          a number by hand: two vectors share a bucket in some round
predict_sharper_rank               a prediction: how the rank of a map moves with its temperature
check_which_generates              a multiple choice: which of the chapter's methods can generate text
=================================  ================================================================
"""
from __future__ import annotations

import torch

from ..attention.linformer import linformer_attention, random_projection
from ..attention.reformer import lsh_hash
from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@exercise(points=2, difficulty=1, minutes=10, title="Linformer attention")
def check_linformer(fn):
    """softmax(Q (E K)ᵀ / √d) (F V) with E, F of shape (k, L)."""
    for i, (L, r, d) in enumerate(((1, 1, 4), (7, 3, 8), (63, 16, 16))):
        q, k, v = (_randn(2, 2, L, d, seed=10 * i + j) for j in range(3))
        E, F = random_projection(r, L, i), random_projection(r, L, i + 100)
        out = expect_tensor(fn(q, k, v, E, F), f"the output for L = {L}, k = {r}", (2, 2, L, d)).double()
        ref = linformer_attention(q, k, v, E, F)
        if torch.allclose(out, ref, atol=1e-9):
            continue
        if torch.allclose(out, linformer_attention(q, k, v, E, F, scale=1.0), atol=1e-9):
            raise Mismatch("close: the scores still need the 1/√d temperature.")
        if torch.allclose(out, linformer_attention(q, k, v, F, E), atol=1e-9) and L > 1:
            raise Mismatch("E projects the keys and F the values — you swapped them.")
        raise Mismatch(f"for L = {L}, k = {r} the output differs by up to {(out - ref).abs().max():.2e}; "
                       "project along the length axis (E @ K has shape (k, d) per head).")


@exercise(points=2, difficulty=2, minutes=10, title="best rank-k approximation")
def check_best_rank_k(fn):
    """The rank-k matrix closest to P in Frobenius norm (Eckart–Young)."""
    for i, (n, r) in enumerate(((1, 1), (6, 2), (17, 5))):
        P = torch.softmax(_randn(n, n, seed=i) * 2, -1)
        out = expect_tensor(fn(P.clone(), r), f"P_k for a ({n}, {n}) matrix and k = {r}", (n, n)).double()
        sv = torch.linalg.svdvals(P)
        best = sv[r:].pow(2).sum().sqrt()
        if torch.linalg.matrix_rank(out, atol=1e-8) > r:
            raise Mismatch(f"your matrix has rank {int(torch.linalg.matrix_rank(out, atol=1e-8))} > k = {r}.")
        err = (P - out).norm()
        if err > best + 1e-8:
            raise Mismatch(f"your rank-{r} matrix is {err:.4f} from P but {best:.4f} is possible: keep the "
                           "directions with the *largest* singular values.")


@exercise(points=2, difficulty=2, minutes=10, title="angular LSH by random rotation")
def check_lsh_hash(fn):
    """Angular LSH: bucket = argmax over the concatenation [xR, −xR] (so 2·R.shape[1] buckets)."""
    for i, (L, d, b) in enumerate(((1, 4, 2), (9, 8, 6), (50, 16, 16))):
        x, R = _randn(L, d, seed=i), _randn(1, d, b // 2, seed=i + 7)
        out = expect_tensor(fn(x, R[0]), f"buckets for x ({L}, {d}) and R ({d}, {b // 2})", (L,))
        ref = lsh_hash(x, b, 1, rotations=R)[0]
        if torch.equal(out.long(), ref):
            continue
        if torch.equal(out.long(), (x @ R[0]).argmax(-1)):
            raise Mismatch("with only xR you get b/2 buckets; concatenate −xR so opposite directions differ.")
        raise Mismatch(f"for x ({L}, {d}), {b} buckets: {(out.long() != ref).sum().item()} of {L} buckets differ.")


@exercise(points=1, difficulty=1, minutes=5, title="sort tokens by bucket")
def check_sort_by_bucket(fn):
    """The permutation that sorts tokens by bucket, ties broken by position (what LSH attention chunks)."""
    for i, L in enumerate((1, 8, 31)):
        buckets = torch.randint(0, 4, (L,), generator=torch.Generator().manual_seed(i))
        out = expect_tensor(fn(buckets.clone()), f"order for {L} buckets", (L,)).long()
        ref = torch.argsort(buckets * L + torch.arange(L))
        if torch.equal(out, ref):
            continue
        if torch.equal(buckets[out], buckets[ref]):
            raise Mismatch("the buckets come out sorted, but tokens in the same bucket must stay in position order.")
        raise Mismatch("buckets[order] should be non-decreasing: return indices (a permutation), not values.")


@exercise(points=3, difficulty=2, minutes=10, title="inverse of a reversible layer")
def check_reversible_inverse(fn):
    """Given y1 = x1 + f(x2), y2 = x2 + g(y1), recover (x1, x2) without storing them."""
    f = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh()).double()
    g = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.GELU()).double()
    for i in range(3):
        x1, x2 = _randn(3, 6, seed=i), _randn(3, 6, seed=i + 50)
        with torch.no_grad():
            y1 = x1 + f(x2)
            y2 = x2 + g(y1)
            got = fn(y1.clone(), y2.clone(), f, g)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Mismatch("return a tuple (x1, x2).")
        a, b = (expect_tensor(t, n, (3, 6)).double() for t, n in zip(got, ("x1", "x2")))
        if torch.allclose(b, x2, atol=1e-10) and not torch.allclose(a, x1, atol=1e-10):
            raise Mismatch("x2 is right; x1 comes from y1 and f of the *recovered* x2.")
        if not torch.allclose(b, x2, atol=1e-10):
            raise Mismatch("undo the layers in reverse order: y2 was computed last, so recover x2 first.")


# --------------------------------------------------------------------------- questions

ANGLE_DEG, ROUNDS = 60, 3                  # the pair of vectors and the rounds the page describes


@number_question(points=1, difficulty=2, minutes=8, title="collisions over several rounds", rel_tol=0.005,
                 near={(1 - ANGLE_DEG / 180) / (1 - (ANGLE_DEG / 180) ** ROUNDS):
                       "that is one round; the question asks for *at least one* of the rounds.",
                       (1 - ANGLE_DEG / 180) ** ROUNDS / (1 - (ANGLE_DEG / 180) ** ROUNDS):
                       "that is the chance to collide in *every* round; at least one is far more likely.",
                       (ANGLE_DEG / 180) ** ROUNDS / (1 - (ANGLE_DEG / 180) ** ROUNDS):
                       "that is the chance to be separated in every round: take its complement."})
def check_collision_in_rounds():
    """P(two vectors at 60° share a bucket in at least one of 3 independent rounds of one random
    hyperplane each): 1 − (θ/π)³."""
    return 1 - (ANGLE_DEG / 180) ** ROUNDS


def _rank_option(ranks) -> str:
    """``ranks``: (90%-energy rank of the maps at scale 1, at scale 3)."""
    flat, sharp = ranks
    return "a" if sharp > flat else ("b" if sharp < flat else "c")


predict_sharper_rank = prediction(
    "predict_sharper_rank", options="abc", answer="4bbb9e0d6cb703dc", observe=_rank_option,
    describe=lambda r: f"a 90%-energy rank of {r[0]} for the maps at scale 1 and {r[1]} at scale 3",
    points=1, difficulty=2, minutes=3, title="temperature and rank",
    hints={"b": "a sharper map puts each row's weight on a few keys, different keys for different rows: "
                "closer to a permutation, which needs full rank.",
           "c": "the spectrum of a flat map and that of a nearly one-hot map look very different."})


check_which_generates = choice_question(
    "check_which_generates", options="abc", answer="dc72a0f5f7102c6e", points=1, difficulty=1, minutes=3,
    title="which method can generate text",
    hints={"a": "each row of E·K mixes keys from every position, the future included: no mask can remove it.",
           "b": "which keys share query i's chunk depends on how the later tokens hash: a later token can "
                "change an earlier output even with the causal mask."})
