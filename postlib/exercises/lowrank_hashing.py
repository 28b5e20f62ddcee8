"""Exercises of the "Low rank and hashing" chapter: five checkers.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_linformer                    ``fn(q, k, v, E, F) -> out``  Eq. 7 of Linformer
check_best_rank_k                  ``fn(P, k) -> P_k``  best rank-k approximation of a matrix
check_lsh_hash                     ``fn(x, R) -> buckets``  h(x) = argmax([xR; −xR])
check_sort_by_bucket               ``fn(buckets) -> order``  stable sort by (bucket, position)
check_reversible_inverse           ``fn(y1, y2, f, g) -> (x1, x2)``  undo a reversible layer
=================================  ================================================================
"""
from __future__ import annotations

import torch

from ..attention.linformer import linformer_attention, random_projection
from ..attention.reformer import lsh_hash
from .core import Mismatch, exercise, expect_tensor


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
