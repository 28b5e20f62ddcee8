"""Synthetic tasks that isolate one ability of a sequence mixer.

Each generator returns ``(inputs, targets)`` as int64 tensors, where targets
are ``-100`` (ignored by cross-entropy) everywhere except the positions that
are scored. They are seeded, so a chapter gets the same data every run.

* ``selective_copying`` — Mamba (Gu & Dao 2023, §4.1.1): copy the coloured
  tokens scattered among noise, in order, ignoring the noise. Needs
  *content*-dependent (selective) memory.
* ``associative_recall`` — MQAR (Arora et al. 2023, Zoology): key-value pairs,
  then queries of keys; answer each with its value. Needs recall.
* ``induction_heads`` — Olsson et al. (2022): after a special token, copy the
  token that followed its previous occurrence.
"""
from __future__ import annotations

import torch

from ._checks import check_positive_int

IGNORE = -100


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def selective_copying(n: int, length: int = 64, n_memorize: int = 8, n_colors: int = 8, seed: int = 0):
    """Selective copying (Mamba Table 1, at small scale).

    Vocabulary: 0 = noise, 1..n_colors = colours, n_colors+1 = separator.
    Input: ``length`` tokens with ``n_memorize`` coloured tokens at random
    positions, then a separator and ``n_memorize`` blanks to answer in.
    Target: the coloured tokens in order, at the answer positions.
    Returns inputs, targets of shape (n, length + 1 + n_memorize) and the vocab size.
    """
    for name, val in (("n", n), ("length", length), ("n_memorize", n_memorize), ("n_colors", n_colors)):
        check_positive_int(val, name)
    if n_memorize > length:
        raise ValueError(f"n_memorize ({n_memorize}) must be <= length ({length})")
    g = _generator(seed)
    sep = n_colors + 1
    total = length + 1 + n_memorize
    inputs = torch.zeros(n, total, dtype=torch.long)
    targets = torch.full((n, total), IGNORE, dtype=torch.long)
    colors = torch.randint(1, n_colors + 1, (n, n_memorize), generator=g)
    positions = torch.rand(n, length, generator=g).argsort(dim=1)[:, :n_memorize].sort(dim=1).values
    inputs.scatter_(1, positions, colors)
    inputs[:, length] = sep
    # The model predicts token t+1 at position t; the answers sit after the separator.
    targets[:, length:length + n_memorize] = colors
    return inputs, targets, n_colors + 2


def associative_recall(n: int, n_pairs: int = 8, n_keys: int = 32, n_values: int = 32, n_queries: int | None = None,
                       seed: int = 0):
    """Multi-query associative recall (MQAR, Zoology).

    Sequence: k1 v1 k2 v2 ... kP vP  q1 ? q2 ? ... where each query is one of
    the keys; the target at a query's position is its value. Keys are drawn
    without replacement so each has one value. Tokens: keys 0..n_keys-1,
    values n_keys..n_keys+n_values-1. Returns inputs, targets, vocab size.
    """
    for name, val in (("n", n), ("n_pairs", n_pairs), ("n_keys", n_keys), ("n_values", n_values)):
        check_positive_int(val, name)
    if n_pairs > n_keys:
        raise ValueError(f"n_pairs ({n_pairs}) must be <= n_keys ({n_keys})")
    n_queries = n_pairs if n_queries is None else check_positive_int(n_queries, "n_queries")
    g = _generator(seed)
    keys = torch.rand(n, n_keys, generator=g).argsort(dim=1)[:, :n_pairs]
    values = torch.randint(0, n_values, (n, n_pairs), generator=g) + n_keys
    which = torch.randint(0, n_pairs, (n, n_queries), generator=g)
    query_keys = keys.gather(1, which)
    query_values = values.gather(1, which)
    context = torch.stack([keys, values], dim=2).reshape(n, 2 * n_pairs)
    inputs = torch.cat([context, query_keys], dim=1)
    targets = torch.full_like(inputs, IGNORE)
    targets[:, 2 * n_pairs:] = query_values
    return inputs, targets, n_keys + n_values


def induction_heads(n: int, length: int = 64, vocab: int = 16, seed: int = 0):
    """Induction heads (Mamba Table 2, small): random tokens, a trigger token,
    the token after it, more noise, then the trigger again: predict that token.
    Token ``vocab`` is the trigger. Returns inputs, targets, vocab size (vocab + 1)."""
    check_positive_int(n, "n")
    check_positive_int(vocab, "vocab")
    if length < 4:
        raise ValueError(f"length must be >= 4, got {length}")
    g = _generator(seed)
    trigger = vocab
    inputs = torch.randint(0, vocab, (n, length), generator=g)
    pos = torch.randint(0, length - 3, (n,), generator=g)
    answer = torch.randint(0, vocab, (n,), generator=g)
    rows = torch.arange(n)
    inputs[rows, pos] = trigger
    inputs[rows, pos + 1] = answer
    inputs[:, -1] = trigger
    targets = torch.full_like(inputs, IGNORE)
    targets[:, -1] = answer
    return inputs, targets, vocab + 1


LISTOPS_OPS = ("MAX", "MIN", "SM")   # SM: sum modulo 10, as in Long Range Arena's ListOps


def _listops_value(op: str, args: list[int]) -> int:
    return max(args) if op == "MAX" else min(args) if op == "MIN" else sum(args) % 10


def _listops_tree(rng, depth: int, max_args: int) -> tuple[list[str], int]:
    """A random expression (as tokens) and its value: an operator over 2..max_args arguments, each
    a digit or, while ``depth`` allows, a nested expression."""
    op = LISTOPS_OPS[rng.randrange(len(LISTOPS_OPS))]
    tokens, args = [op], []
    for _ in range(rng.randint(2, max_args)):
        if depth > 1 and rng.random() < 0.4:
            sub, value = _listops_tree(rng, depth - 1, max_args)
        else:
            value = rng.randrange(10)
            sub = [str(value)]
        tokens += sub
        args.append(value)
    return tokens + ["]"], _listops_value(op, args)


def listops(n: int, length: int = 32, depth: int = 3, max_args: int = 4, seed: int = 0):
    """A small generated ListOps-like task (after Nangia & Bowman 2018, as used in Long Range Arena).

    An expression such as ``[MAX 3 [SM 4 9 ] 1 ]`` (written ``MAX 3 SM 4 9 ] 1 ]``: an operator token
    opens its bracket) over digits 0–9 with MAX, MIN and SM (sum mod 10), nested up to ``depth``,
    left-padded to ``length`` tokens, then ``=``; the target at ``=`` is the expression's value.
    Tokens: digits 0..9, MAX 10, MIN 11, SM 12, ``]`` 13, pad 14, ``=`` 15.
    Returns inputs, targets of shape (n, length + 1) and the vocab size (16).
    """
    import random
    for name, val in (("n", n), ("depth", depth)):
        check_positive_int(val, name)
    check_positive_int(length, "length", minimum=4)
    check_positive_int(max_args, "max_args", minimum=2)
    ids = {str(d): d for d in range(10)} | {"MAX": 10, "MIN": 11, "SM": 12, "]": 13}
    pad, equals = 14, 15
    rng = random.Random(seed)
    inputs = torch.full((n, length + 1), pad, dtype=torch.long)
    targets = torch.full((n, length + 1), IGNORE, dtype=torch.long)
    for i in range(n):
        while True:   # draw until the expression fits (short ones are common, so this ends quickly)
            tokens, value = _listops_tree(rng, depth, max_args)
            if len(tokens) <= length:
                break
        inputs[i, length - len(tokens):length] = torch.tensor([ids[t] for t in tokens])
        targets[i, length] = value
    inputs[:, length] = equals
    return inputs, targets, 16
