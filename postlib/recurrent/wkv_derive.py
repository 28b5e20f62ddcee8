"""The derivation behind the stable WKV recurrence, done by a computer algebra system.

1. **The shift leaves the ratio unchanged.** WKV is a ratio of two sums that share every exponent:
   (Σ e^{x_i} v_i) / (Σ e^{x_i}). Multiplying numerator and denominator by e^{−q} changes nothing,
   for *any* q (``shift_invariance``). The stable kernel picks q = the largest exponent in play, so
   every exp() it takes is of a number ≤ 0 and cannot overflow — the only reason q is a maximum.

2. **The running-maximum recurrence carries the sums.** With state (p, a, b) standing for the sums
   e^{p}·a and e^{p}·b, one step of the official kernel

       output:  q = max(p, u + k_t),      wkv_t = (e^{p−q} a + e^{u+k_t−q} v_t) / (e^{p−q} b + e^{u+k_t−q})
       update:  q' = max(p − w, k_t),     a ← e^{p−w−q'} a + e^{k_t−q'} v_t,  b likewise,  p ← q'

   keeps e^{p}·a = Σ_{i≤t} e^{−(t−i)w + k_i} v_i exactly: ``recurrence_residuals`` unrolls T steps
   symbolically — the maxima left as sympy ``Max`` — and checks that every output equals the
   definition (``postlib.recurrent.wkv.wkv_definition``'s formula) with a residual of 0.

``unrolled_numeric`` lambdifies the unrolled recurrence; ``tests/recurrent/test_wkv_derive.py``
checks it against ``wkv(..., backend="recurrent")`` and ``wkv_definition`` numerically, so the
derivation shown in the chapter is a test of the code.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

from .._checks import check_positive_int

W = sp.Symbol("w", positive=True)        # the decay rate
U = sp.Symbol("u", real=True)            # the bonus
P, A, B, Q, K, V, X = sp.symbols("p a b q k v x", real=True)


def _zero(expr) -> sp.Expr:
    """Simplify an expression that should vanish (exponentials first, then rational simplification)."""
    return sp.simplify(sp.powsimp(sp.expand(sp.powsimp(expr, force=True)), force=True))


def shift_invariance() -> tuple[sp.Eq, sp.Expr]:
    """(the identity as an equation, its residual): shifting every exponent of a ratio by −q changes nothing."""
    shifted = (sp.exp(P - Q) * A + sp.exp(X - Q) * V) / (sp.exp(P - Q) * B + sp.exp(X - Q))
    plain = (sp.exp(P) * A + sp.exp(X) * V) / (sp.exp(P) * B + sp.exp(X))
    return sp.Eq(shifted, plain), _zero(shifted - plain)


def token_symbols(T: int):
    """Real symbols (k_0..k_{T−1}), (v_0..v_{T−1})."""
    check_positive_int(T, "T")
    return sp.symbols(f"k_0:{T}", real=True), sp.symbols(f"v_0:{T}", real=True)


def definition(t: int, k, v, w=W, u=U) -> sp.Expr:
    """wkv_t straight from the equation."""
    num = sum(sp.exp(-(t - 1 - i) * w + k[i]) * v[i] for i in range(t)) + sp.exp(u + k[t]) * v[t]
    den = sum(sp.exp(-(t - 1 - i) * w + k[i]) for i in range(t)) + sp.exp(u + k[t])
    return num / den


def stable_step(p, a, b, k_t, v_t, w=W, u=U, decay_in_shift: bool = True):
    """One step of the running-maximum recurrence (symbolic): (wkv_t, (p, a, b) after token t).
    ``decay_in_shift=False`` is a deliberate bug (the past not decayed) that the residuals must catch."""
    q = sp.Max(p, u + k_t)
    out = (sp.exp(p - q) * a + sp.exp(u + k_t - q) * v_t) / (sp.exp(p - q) * b + sp.exp(u + k_t - q))
    past = p - w if decay_in_shift else p
    q2 = sp.Max(past, k_t)
    return out, (q2, sp.exp(past - q2) * a + sp.exp(k_t - q2) * v_t, sp.exp(past - q2) * b + sp.exp(k_t - q2))


def unrolled(T: int, w=W, u=U, decay_in_shift: bool = True):
    """T steps of ``stable_step`` from the empty state (a = b = 0; its shift p is arbitrary)."""
    k, v = token_symbols(T)
    outs = []
    # The empty state: sums of zero terms. Any finite p works (the sums are 0); the kernel uses −1e38.
    state = (k[0], sp.Integer(0), sp.Integer(0))
    for t in range(T):
        out, state = stable_step(*state, k[t], v[t], w, u, decay_in_shift)
        outs.append(out)
    return k, v, outs, state


@lru_cache(maxsize=None)
def recurrence_residuals(T: int = 3, decay_in_shift: bool = True) -> tuple[sp.Expr, ...]:
    """Residual (recurrence output − definition) for t = 0..T−1; each simplifies to 0.

    The maxima cancel because of ``shift_invariance``: in each step both terms of numerator and
    denominator carry the same e^{−q}, so sympy may factor it out whatever q is. We substitute the
    maxima by fresh symbols (the identity must hold for any value they take), which is exactly the
    statement "the shift does not matter".
    """
    k, v, outs, _ = unrolled(T, decay_in_shift=decay_in_shift)
    residuals = []
    for t, out in enumerate(outs):
        # Every Max(...) becomes an unconstrained symbol: the identity holding for all of them is stronger.
        maxima = sorted(out.atoms(sp.Max), key=sp.default_sort_key)
        free = {m: sp.Symbol(f"q_{i}", real=True) for i, m in enumerate(maxima)}
        residuals.append(_zero(out.xreplace(free) - definition(t, k, v)))
    return tuple(residuals)


def state_residual(T: int = 3) -> sp.Expr:
    """e^{p}·a after T tokens minus Σ_{i<T} e^{−(T−1−i)w + k_i} v_i (0: the state carries the sums)."""
    k, v, _, (p, a, _) = unrolled(T)
    maxima = sorted((sp.exp(p) * a).atoms(sp.Max), key=sp.default_sort_key)
    free = {m: sp.Symbol(f"q_{i}", real=True) for i, m in enumerate(maxima)}
    expected = sum(sp.exp(-(T - 1 - i) * W + k[i]) * v[i] for i in range(T))
    return _zero((sp.exp(p) * a).xreplace(free) - expected)


@lru_cache(maxsize=None)
def _lambdified(T: int):
    k, v, outs, _ = unrolled(T)
    return sp.lambdify((W, U, *k, *v), outs, modules="numpy")


def unrolled_numeric(w: float, u: float, k, v) -> np.ndarray:
    """The symbolic recurrence evaluated (numpy, float64) for one channel: k, v of length T ≤ 8."""
    k, v = np.asarray(k, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if k.shape != v.shape or k.ndim != 1 or not 1 <= len(k) <= 8:
        raise ValueError(f"k and v must be 1-D of the same length in 1..8, got {k.shape} and {v.shape}")
    return np.array(_lambdified(len(k))(w, u, *k, *v), dtype=np.float64)
