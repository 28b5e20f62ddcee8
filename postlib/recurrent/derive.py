"""The derivations behind the recurrent-causal chapter, done by a computer algebra system.

1. **Transformer-XL's four terms** (Dai et al. 2019, §3.3). With absolute positions the score of query i and
   key j expands into four products; Transformer-XL keeps their *roles* but rewrites each so that only the
   distance i − j appears: U_j → R_{i−j} with its own key matrix W_{k,R}, and the query-side position terms
   U_iᵀW_qᵀ → trainable u, v (the same for every i). Sympy expands the absolute score, checks it is the sum of
   the four terms, and checks that the relative score is (q_i + u)·k_j + (q_i + v)·r_{i−j} — the form the code
   computes (:func:`relative_score_numeric` evaluates it; ``tests/recurrent/test_derive.py`` holds it to
   ``relative_scores_loop``).
2. **RetNet's three forms** (Sun et al. 2023, Eq. 5–7): for symbolic q, k, v and γ, the parallel sum, the
   recurrence and the chunkwise form give the same o_t at every t.
3. **Mega's EMA kernel**: unrolling h_t = αβ x_t + (1 − αδ) h_{t−1} gives y_t = Σ_s K_{t−s} x_s with
   K_t = η αβ (1 − αδ)^t — the convolution the FFT computes.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .._checks import check_positive_int

D = 2   # symbolic vectors of size 2 are enough: every identity is bilinear, so it holds entry by entry


def _vec(name: str) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}_1:{D + 1}", real=True))


def _mat(name: str) -> sp.Matrix:
    return sp.Matrix(D, D, lambda r, c: sp.Symbol(f"{name}_{r + 1}{c + 1}", real=True))


@lru_cache(maxsize=None)
def four_terms() -> dict:
    """The absolute score, its four terms and Transformer-XL's relative score, with residuals that must be 0.

    Returns {"absolute", "terms" (a, b, c, d), "relative", "expanded_residual", "relative_residual"} (sympy).
    """
    E_i, E_j, U_i, U_j, R, u, v = (_vec(n) for n in ("E_i", "E_j", "U_i", "U_j", "R_ij", "u", "v"))
    W_q, W_k, W_kE, W_kR = (_mat(n) for n in ("W_q", "W_k", "W_kE", "W_kR"))
    absolute = ((W_q * (E_i + U_i)).T * (W_k * (E_j + U_j)))[0]
    terms = [(E_i.T * W_q.T * W_k * E_j)[0],          # (a) content-content
             (E_i.T * W_q.T * W_k * U_j)[0],          # (b) content-position
             (U_i.T * W_q.T * W_k * E_j)[0],          # (c) position-content: a global content bias
             (U_i.T * W_q.T * W_k * U_j)[0]]          # (d) position-position: a global position bias
    # Transformer-XL: U_j → R_{i−j} through W_kR; W_k → W_kE for content; U_iᵀW_qᵀ → uᵀ in (c), vᵀ in (d).
    relative_terms = [(E_i.T * W_q.T * W_kE * E_j)[0], (E_i.T * W_q.T * W_kR * R)[0],
                      (u.T * W_kE * E_j)[0], (v.T * W_kR * R)[0]]
    q, k, r = W_q * E_i, W_kE * E_j, W_kR * R
    code_form = ((q + u).T * k + (q + v).T * r)[0]
    return {"absolute": absolute, "terms": terms, "relative": sum(relative_terms),
            "expanded_residual": sp.expand(absolute - sum(terms)),
            "relative_residual": sp.expand(sum(relative_terms) - code_form)}


def relative_score_numeric(q, k, r, u, v) -> float:
    """(q + u)·k + (q + v)·r for plain sequences of numbers: the derived form, evaluated."""
    return sum((qi + ui) * ki for qi, ui, ki in zip(q, u, k)) + sum((qi + vi) * ri for qi, vi, ri in zip(q, v, r))


def retention_forms(length: int = 5, chunk: int = 2) -> dict:
    """Symbolic o_t from RetNet's parallel (Eq. 5), recurrent (Eq. 6) and chunkwise (Eq. 7) forms (scalar q, k, v).

    Returns {"parallel": [...], "recurrent": [...], "chunkwise": [...], "residuals": [...]} — every residual 0.
    """
    check_positive_int(length, "length")
    check_positive_int(chunk, "chunk")
    g = sp.Symbol("gamma", positive=True)
    q, k, v = (sp.symbols(f"{n}_0:{length}", real=True) for n in "qkv")
    parallel = [sum(g ** (t - s) * q[t] * k[s] * v[s] for s in range(t + 1)) for t in range(length)]
    recurrent, S = [], 0
    for t in range(length):
        S = g * S + k[t] * v[t]
        recurrent.append(q[t] * S)
    chunkwise, R = [], 0                                   # R: the state after the previous chunk
    for start in range(0, length, chunk):
        idx = range(start, min(start + chunk, length))
        for t in idx:
            inner = sum(g ** (t - s) * q[t] * k[s] * v[s] for s in idx if s <= t)
            chunkwise.append(inner + g ** (t - start + 1) * q[t] * R)
        end = idx[-1]
        R = g ** len(idx) * R + sum(g ** (end - s) * k[s] * v[s] for s in idx)
    residuals = [sp.expand(a - b) for a, b in zip(parallel, recurrent)]
    residuals += [sp.expand(a - c) for a, c in zip(parallel, chunkwise)]
    return {"parallel": parallel, "recurrent": recurrent, "chunkwise": chunkwise, "residuals": residuals}


def ema_unrolled(length: int = 5) -> dict:
    """Unroll Mega's EMA for one (channel, dimension): y_t = η h_t = Σ_s K_{t−s} x_s with K_t = ηαβ(1 − αδ)^t.

    Returns {"outputs": [...], "kernel": K_t (symbolic in t), "residuals": [...]} — every residual 0.
    """
    check_positive_int(length, "length")
    alpha, delta, beta, eta = sp.symbols("alpha delta beta eta", positive=True)
    t_sym = sp.Symbol("t", integer=True, nonnegative=True)
    x = sp.symbols(f"x_0:{length}", real=True)
    kernel = eta * alpha * beta * (1 - alpha * delta) ** t_sym
    h, outputs, residuals = 0, [], []
    for t in range(length):
        h = alpha * beta * x[t] + (1 - alpha * delta) * h
        outputs.append(eta * h)
        conv = sum(kernel.subs(t_sym, t - s) * x[s] for s in range(t + 1))
        residuals.append(sp.expand(eta * h - conv))
    return {"outputs": outputs, "kernel": kernel, "residuals": residuals}
