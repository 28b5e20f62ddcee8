"""The derivations behind chapter 1, done by a computer algebra system.

1. **The online-softmax merge** (Milakov & Gimelshein 2018; Dao et al. 2022).
   A block of keys with scores ``s_j`` and values ``v_j`` is summarised by
   three numbers per query row, taken relative to a reference point ``m``::

       l(m)   = Σ_j e^{s_j − m}              (denominator)
       acc(m) = Σ_j e^{s_j − m} v_j          (un-normalised output)

   Moving a summary to a new reference point only multiplies it by
   ``e^{m_old − m_new}`` (the *rescaling identity*), so two blocks A and B
   merge into the statistics of their concatenation::

       m   = max(m_A, m_B)
       l   = l_A e^{m_A − m} + l_B e^{m_B − m}
       acc = acc_A e^{m_A − m} + acc_B e^{m_B − m}

   and ``acc / l`` is the softmax-weighted average over A ∪ B. sympy checks
   each step by simplifying the difference to 0. The proof never uses that
   ``m`` is the maximum: any reference gives the exact result, and the max is
   chosen only so that every exponent is ≤ 0 (no overflow in floating point).
   The merge is also commutative and associative, which is why tiles may be
   visited in any order or split across processors and merged afterwards.

2. **Cost counts** of materialised and tiled attention (``attention_costs``),
   the formulas behind ``postlib.viz.attention.cost_curves``.

``merge_numeric`` lambdifies the symbolic merge; ``tests/attention/test_derive.py``
checks it against ``postlib.attention.flash.online_softmax_update`` and
``postlib.attention.softmax.softmax_attention``, so the derivation is a test.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp

from .._checks import check_positive_int

# One output channel is enough for the proof: acc is linear in v, so every
# channel of a vector-valued v is the same computation.
M_A, M_B, L_A, L_B, ACC_A, ACC_B = sp.symbols("m_A m_B l_A l_B acc_A acc_B", real=True)
MU = sp.Symbol("mu", real=True)  # an arbitrary reference point


def block_symbols(n: int, name: str) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Symbol, ...]]:
    """Real symbols ``(s_{name,1..n}, v_{name,1..n})``: the scores and values of one block."""
    check_positive_int(n, "n")
    scores = sp.symbols(f"s_{{{name}\\,1:{n + 1}}}", real=True)
    values = sp.symbols(f"v_{{{name}\\,1:{n + 1}}}", real=True)
    return tuple(scores), tuple(values)


def block_statistics(scores, values, reference) -> tuple[sp.Expr, sp.Expr]:
    """``(l, acc)`` of one block relative to ``reference``: Σ e^{s−m} and Σ e^{s−m} v."""
    if len(scores) != len(values):
        raise ValueError(f"scores and values must have the same length, got {len(scores)} and {len(values)}")
    weights = [sp.exp(s - reference) for s in scores]
    return sp.Add(*weights), sp.Add(*[w * v for w, v in zip(weights, values)])


def merge(m_a, l_a, acc_a, m_b, l_b, acc_b, reference=None) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """The merge rule: statistics of A ∪ B from those of A and B.

    ``reference`` defaults to ``max(m_A, m_B)`` (what FlashAttention uses); pass
    any other expression to see that the result does not depend on it.
    """
    m = sp.Max(m_a, m_b) if reference is None else reference
    return m, l_a * sp.exp(m_a - m) + l_b * sp.exp(m_b - m), acc_a * sp.exp(m_a - m) + acc_b * sp.exp(m_b - m)


def merge_rule() -> list[sp.Eq]:
    """The three merge equations as ``sympy.Eq`` (display them with ``sympy.latex``)."""
    m = sp.Symbol("m", real=True)
    # Display names only: typeset "acc" upright and l as ℓ, as in the chapter's prose.
    pretty = {ACC_A: sp.Symbol(r"\mathrm{acc}_A", real=True), ACC_B: sp.Symbol(r"\mathrm{acc}_B", real=True),
              L_A: sp.Symbol(r"\ell_A", real=True), L_B: sp.Symbol(r"\ell_B", real=True)}
    m_expr, _, _ = merge(M_A, L_A, ACC_A, M_B, L_B, ACC_B)
    _, l_m, acc_m = (e.subs(pretty) for e in merge(M_A, L_A, ACC_A, M_B, L_B, ACC_B, reference=m))
    return [sp.Eq(m, m_expr), sp.Eq(sp.Symbol(r"\ell", real=True), l_m),
            sp.Eq(sp.Symbol(r"\mathrm{acc}", real=True), acc_m)]


def rescaling_identity() -> tuple[sp.Eq, sp.Expr]:
    """``e^{s−m_old}·e^{m_old−m_new} = e^{s−m_new}`` and its residual (lhs − rhs, simplified: 0)."""
    s, m_old, m_new = sp.symbols(r"s m_\mathrm{old} m_\mathrm{new}", real=True)
    lhs, rhs = sp.exp(s - m_old) * sp.exp(m_old - m_new), sp.exp(s - m_new)
    return sp.Eq(lhs, rhs, evaluate=False), sp.simplify(lhs - rhs)


def merge_residuals(n_a: int = 2, n_b: int = 3, reference: str = "max") -> dict[str, sp.Expr]:
    """Merged statistics minus those computed on the concatenation, simplified.

    Blocks A (``n_a`` keys) and B (``n_b`` keys) are summarised relative to their
    own maxima, merged with :func:`merge`, and compared with

    * ``"l"``: Σ_{A∪B} e^{s−m} (the denominator at the merged reference),
    * ``"acc"``: Σ_{A∪B} e^{s−m} v,
    * ``"output"``: acc / l − softmax(s)·v over A ∪ B (the attention output).

    ``reference="max"`` merges at max(m_A, m_B); ``"free"`` at an arbitrary
    symbol μ, proving the max is needed only for floating point. Every
    residual simplifies to 0.
    """
    check_positive_int(n_a, "n_a")
    check_positive_int(n_b, "n_b")
    if reference not in ("max", "free"):
        raise ValueError(f"reference must be 'max' or 'free', got {reference!r}")
    s_a, v_a = block_symbols(n_a, "A")
    s_b, v_b = block_symbols(n_b, "B")
    m_a, m_b = sp.Max(*s_a), sp.Max(*s_b)
    l_a, acc_a = block_statistics(s_a, v_a, m_a)
    l_b, acc_b = block_statistics(s_b, v_b, m_b)
    m, l, acc = merge(m_a, l_a, acc_a, m_b, l_b, acc_b, reference=None if reference == "max" else MU)
    l_cat, acc_cat = block_statistics(s_a + s_b, v_a + v_b, m)
    softmax_output = sp.Add(*[sp.exp(s) * v for s, v in zip(s_a + s_b, v_a + v_b)]) / sp.Add(
        *[sp.exp(s) for s in s_a + s_b])
    return {"l": _zero(l - l_cat), "acc": _zero(acc - acc_cat), "output": _zero(acc / l - softmax_output)}


def associativity_residuals() -> dict[str, sp.Expr]:
    """merge(merge(A, B), C) − merge(A, merge(B, C)) and merge(A, B) − merge(B, A), per statistic.

    All simplify to 0: the order and grouping of tiles do not matter, which is
    what lets FlashAttention-2 and split-KV decoding process tiles in parallel.
    """
    m_c, l_c, acc_c = sp.symbols("m_C l_C acc_C", real=True)
    a, b, c = (M_A, L_A, ACC_A), (M_B, L_B, ACC_B), (m_c, l_c, acc_c)
    left = merge(*merge(*a, *b), *c)
    right = merge(*a, *merge(*b, *c))
    swapped = merge(*b, *a)
    straight = merge(*a, *b)
    out = {}
    for i, stat in enumerate(("m", "l", "acc")):
        out[f"associative {stat}"] = _zero(left[i] - right[i])
        out[f"commutative {stat}"] = _zero(straight[i] - swapped[i])
    return out


def _zero(expr: sp.Expr) -> sp.Expr:
    """Simplify ``expr``; exponentials are first combined so e^{a}e^{b} meets e^{a+b}."""
    return sp.simplify(sp.powsimp(sp.expand(expr)))


@lru_cache(maxsize=1)
def _lambdified():
    m_expr, l_expr, acc_expr = merge(M_A, L_A, ACC_A, M_B, L_B, ACC_B)
    return (sp.lambdify((M_A, M_B), m_expr, "numpy"),
            sp.lambdify((M_A, L_A, M_B, L_B), l_expr, "numpy"),
            sp.lambdify((M_A, ACC_A, M_B, ACC_B), acc_expr, "numpy"))


def merge_numeric(m_a, l_a, acc_a, m_b, l_b, acc_b):
    """The symbolic merge, lambdified to NumPy: ``(m, l, acc)`` of the union of blocks A and B.

    Shapes follow ``online_softmax_update``: m, l are ``(..., L_q)``; acc is
    ``(..., L_q, Dv)``. A block with no visible key has m = −inf, l = 0, acc = 0
    and drops out; if both blocks are empty the result is NaN (there is no
    softmax over zero keys).
    """
    m_fn, l_fn, acc_fn = _lambdified()
    arrays = [np.asarray(x, dtype=np.float64) for x in (m_a, l_a, acc_a, m_b, l_b, acc_b)]
    m_a, l_a, acc_a, m_b, l_b, acc_b = arrays
    if m_a.shape != l_a.shape or m_b.shape != l_b.shape or m_a.shape != m_b.shape:
        raise ValueError(f"m_a, l_a, m_b, l_b must share the shape (..., L_q), got "
                         f"{m_a.shape}, {l_a.shape}, {m_b.shape}, {l_b.shape}")
    if acc_a.shape[:-1] != m_a.shape or acc_b.shape != acc_a.shape:
        raise ValueError(f"acc_a and acc_b must have shape (..., L_q, Dv) with (..., L_q) = {m_a.shape}, "
                         f"got {acc_a.shape} and {acc_b.shape}")
    with np.errstate(invalid="ignore"):
        m = m_fn(m_a, m_b)
        # Trailing axis so the per-row reference broadcasts over the value channels.
        return m, l_fn(m_a, l_a, m_b, l_b), acc_fn(m_a[..., None], acc_a, m_b[..., None], acc_b)


def attention_costs(length: int, head_dim: int, *, length_k: int | None = None, head_dim_v: int | None = None,
                    batch: int = 1, heads: int = 1, block_size: int = 64, bytes_per_element: int = 4) -> dict:
    """Forward-pass counts from the formula (not measurements) for one attention call.

    FLOPs count the two matrix products, 2 FLOPs per multiply-add:
    ``Q Kᵀ`` is ``2·L_q·L_k·d`` and ``P V`` is ``2·L_q·L_k·d_v``. The softmax's
    O(L_q·L_k) exponentials are left out (they are not matmul FLOPs). The tiled
    form does the same products plus one rescale of ``acc`` and ``l`` per tile.

    Memory counts the elements alive at the peak, times ``bytes_per_element``:
    both forms hold Q, K, V and the output; the materialised form adds the
    scores S and probabilities P (``2·L_q·L_k``); the tiled form adds one tile
    of each (``2·L_q·block_size``) and the row statistics m, l and acc.
    """
    lq = check_positive_int(length, "length")
    lk = lq if length_k is None else check_positive_int(length_k, "length_k")
    d = check_positive_int(head_dim, "head_dim")
    dv = d if head_dim_v is None else check_positive_int(head_dim_v, "head_dim_v")
    bh = check_positive_int(batch, "batch") * check_positive_int(heads, "heads")
    block = check_positive_int(block_size, "block_size")
    check_positive_int(bytes_per_element, "bytes_per_element")
    matmul_flops = 2 * lq * lk * d + 2 * lq * lk * dv
    n_tiles = math.ceil(lk / block)
    rescale_flops = n_tiles * lq * (dv + 1)  # acc·e^{m−m'} and l·e^{m−m'} once per tile
    io_elements = lq * d + lk * d + lk * dv + lq * dv
    materialised = io_elements + 2 * lq * lk
    tiled = io_elements + 2 * lq * min(block, lk) + lq * (dv + 2)
    return {
        "flops_materialised": bh * matmul_flops,
        "flops_tiled": bh * (matmul_flops + rescale_flops),
        "bytes_materialised": bh * materialised * bytes_per_element,
        "bytes_tiled": bh * tiled * bytes_per_element,
    }
