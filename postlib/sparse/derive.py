"""LongNet's mixture, derived by a computer algebra system: it is one softmax that counts shared keys twice.

Take keys with scores s_j and values v_j, and two branches A and B that each see a subset of
them. Each branch is a softmax over its own keys, with denominator s_A = Σ_{j∈A} e^{s_j};
LongNet mixes them with weights α = s_A / (s_A + s_B) (Ding et al. 2023, §2.2)::

    α_A · O_A + α_B · O_B  =  Σ_j c_j e^{s_j} v_j  /  Σ_j c_j e^{s_j},

where c_j counts the branches that contain key j. That is softmax attention with the
additive bias log c_j — equal to attention over the union A ∪ B only when no key is in both.
``mixture_identity`` builds both sides for symbolic scores and values and simplifies their
difference to 0; ``tests/sparse/test_derive.py`` lambdifies the identity and checks it
against ``postlib.sparse.dilated_attention`` on numbers, so the derivation is a test.
"""
from __future__ import annotations

import sympy as sp

from .._checks import check_positive_int


def _branch(scores, values, keys):
    weights = [sp.exp(scores[j]) for j in keys]
    denominator = sp.Add(*weights)
    return sp.Add(*[w * values[j] for w, j in zip(weights, keys)]) / denominator, denominator


def mixture_identity(n_keys: int = 4, branch_a=(0, 1, 2), branch_b=(1, 3)):
    """``(mixture, biased, union, residual)`` for symbolic scores s_1..s_n and values v_1..v_n.

    ``mixture`` is LongNet's α-weighted sum of the two branch softmaxes, ``biased`` the softmax with
    weights c_j e^{s_j}, ``union`` the plain softmax over A ∪ B, and ``residual`` = simplify(mixture −
    biased), which is 0.
    """
    check_positive_int(n_keys, "n_keys")
    for name, branch in (("branch_a", branch_a), ("branch_b", branch_b)):
        if not branch or any(not 0 <= j < n_keys for j in branch):
            raise ValueError(f"{name} must list key indices in [0, n_keys={n_keys}), got {list(branch)}")
    s = sp.symbols(f"s_1:{n_keys + 1}", real=True)
    v = sp.symbols(f"v_1:{n_keys + 1}", real=True)
    out_a, den_a = _branch(s, v, branch_a)
    out_b, den_b = _branch(s, v, branch_b)
    mixture = den_a / (den_a + den_b) * out_a + den_b / (den_a + den_b) * out_b
    counts = [int(j in branch_a) + int(j in branch_b) for j in range(n_keys)]
    seen = [j for j in range(n_keys) if counts[j]]
    biased = (sp.Add(*[counts[j] * sp.exp(s[j]) * v[j] for j in seen])
              / sp.Add(*[counts[j] * sp.exp(s[j]) for j in seen]))
    union = sp.Add(*[sp.exp(s[j]) * v[j] for j in seen]) / sp.Add(*[sp.exp(s[j]) for j in seen])
    residual = sp.simplify(mixture - biased)
    return mixture, biased, union, residual


def mixture_numeric(n_keys: int = 4, branch_a=(0, 1, 2), branch_b=(1, 3)):
    """The three sides as numeric functions ``f(scores, values) -> float`` (for the test and the chapter)."""
    mixture, biased, union, _ = mixture_identity(n_keys, branch_a, branch_b)
    s = sp.symbols(f"s_1:{n_keys + 1}", real=True)
    v = sp.symbols(f"v_1:{n_keys + 1}", real=True)
    make = lambda expr: sp.lambdify((s, v), expr, "math")  # noqa: E731
    return make(mixture), make(biased), make(union)
