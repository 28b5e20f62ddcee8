"""Exercises of the task-arena chapter (chapters/07_lab/arena.md).

==============================  ==============================================================
checker                         the learner writes / answers
==============================  ==============================================================
check_state_bytes               ``fn(state) -> int``: bytes of a nested decoding state
check_induction_rule            ``fn(tokens, trigger) -> int``: what a perfect induction head answers
check_listops_value             ``fn(tokens) -> int``: evaluate a ListOps expression (a stack)
check_jamba_stack               ``fn(n_layers) -> list[str]``: the Jamba-like layer list
check_linear_state_bytes        a number: bytes of a 2-layer linear-attention model's state
check_which_state_grows         a choice: which part of a hybrid's state grows with the context
==============================  ==============================================================
"""
from __future__ import annotations

import random

import torch

from ..tasks import _listops_tree, induction_heads
from .core import Mismatch, exercise
from .questions import choice_question, number_question


# --------------------------------------------------------------------------- 1. state bytes

def _states():
    g = torch.Generator().manual_seed(0)
    yield torch.randn(3, 5, generator=g), 60
    yield {"k": torch.zeros(2, 4, 0, 8), "v": torch.zeros(2, 4, 0, 8)}, 0          # an empty KV cache
    yield {"h": torch.zeros(2, 16, dtype=torch.float64), "conv": [torch.zeros(2, 3, 7)], "step": 4}, 2 * 16 * 8 + 168
    yield [(torch.zeros(5, dtype=torch.complex64), torch.zeros(1, dtype=torch.float16)), {"n": None}], 40 + 2
    yield {"position": 12, "layers": [{"s": torch.ones(1, 2, 3, 3)}, (torch.ones(1, 6),)]}, 72 + 24


@exercise(points=2, difficulty=1, minutes=10, title="bytes of a decoding state")
def check_state_bytes(fn):
    """``fn(state) -> int``: the bytes held by every tensor in ``state`` (dicts, lists, tuples, nested)."""
    for state, right in _states():
        got = fn(state)
        if isinstance(got, torch.Tensor):
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, int):
            raise Mismatch(f"return an int (a number of bytes), got {type(got).__name__}.")
        if got != right:
            if right and got * 2 == right or got * 4 == right:
                raise Mismatch("too small: count bytes, not elements — each element takes tensor.element_size() "
                               "bytes, and that depends on the dtype.")
            raise Mismatch("wrong total: walk every value of a dict and every item of a list or tuple, count "
                           "numel() × element_size() for each tensor, and nothing for ints or None.")


# --------------------------------------------------------------------------- 2. the induction rule

@exercise(points=2, difficulty=1, minutes=10, title="the induction-head rule")
def check_induction_rule(fn):
    """``fn(tokens, trigger) -> int``: ``tokens`` is a 1-D tensor ending in ``trigger``; return the token
    that followed the trigger's previous occurrence."""
    x, y, vocab = induction_heads(40, length=23, vocab=6, seed=11)
    for row, target in zip(x, y[:, -1]):
        got = fn(row.clone(), 6)
        if isinstance(got, torch.Tensor):
            got = got.item()
        if got != target.item():
            if got == row[-2].item():
                raise Mismatch("that is the token just before the last one: look for the *previous occurrence* "
                               "of the trigger and answer the token right after it.")
            raise Mismatch("find the earlier position p where tokens[p] == trigger (not the last position) and "
                           "return tokens[p + 1].")


# --------------------------------------------------------------------------- 3. ListOps by a stack

def _expressions(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        yield _listops_tree(rng, 4, 4)


@exercise(points=3, difficulty=2, minutes=20, title="evaluate a ListOps expression", forbid=["builtins.eval"])
def check_listops_value(fn):
    """``fn(tokens) -> int``: ``tokens`` is a list of strings like ``["MAX", "3", "SM", "4", "9", "]", "]"]``
    (an operator opens a bracket, ``"]"`` closes it); MAX, MIN, SM = sum mod 10."""
    cases = [(["MAX", "3", "1", "]"], 3), (["SM", "9", "8", "]"], 7), (["MIN", "4", "MAX", "1", "2", "]", "]"], 2)]
    cases += list(_expressions(60, seed=5))
    for tokens, right in cases:
        got = fn(list(tokens))
        if got != right:
            if tokens[0] == "SM" and got == sum(int(t) for t in tokens if t.isdigit()):
                raise Mismatch("SM is the sum *modulo 10*.")
            raise Mismatch(f"wrong value for {' '.join(tokens)}: keep a stack of (operator, arguments); a digit "
                           "joins the arguments on top, ']' pops the top, applies its operator and passes the "
                           "result down as an argument of the one below.")


# --------------------------------------------------------------------------- 4. a Jamba-like stack

@exercise(points=1, difficulty=1, minutes=5, title="a Jamba-like layer list")
def check_jamba_stack(fn):
    """``fn(n_layers) -> list``: ``n_layers`` mixer names, all ``"mamba"`` except one ``"softmax"`` at
    index ``n_layers // 2`` (the attention layer in the middle)."""
    for n in (2, 3, 4, 8, 9):
        got = fn(n)
        right = ["mamba"] * n
        right[n // 2] = "softmax"
        if not isinstance(got, (list, tuple)) or len(got) != n:
            raise Mismatch(f"for n_layers={n} return a list of {n} names, got {got!r}.")
        if list(got).count("softmax") != 1:
            raise Mismatch("exactly one layer is attention (\"softmax\"); the others are \"mamba\".")
        if list(got) != right:
            raise Mismatch(f"the attention layer sits at index n_layers // 2 (for n_layers={n}: {n // 2}).")


# --------------------------------------------------------------------------- 5. a number by hand

LINEAR_D_MODEL, LINEAR_HEADS, LINEAR_LAYERS = 64, 4, 2


@number_question(points=1, difficulty=2, minutes=5, title="a linear-attention state in bytes", rel_tol=0.001,
                 near={1024 / 1088: "almost: each head also keeps its normaliser z (one vector per head).",
                       0.5: "that is one layer: every layer keeps its own state.",
                       4.0: "each head's matrix is head_dim × head_dim, with head_dim = d_model / heads.",
                       0.25: "count bytes, not numbers: fp32 takes 4 bytes."})
def check_linear_state_bytes():
    """Linear attention, fp32: per layer and head a (head_dim × head_dim) state S and a head_dim vector z."""
    head_dim = LINEAR_D_MODEL // LINEAR_HEADS
    return LINEAR_LAYERS * LINEAR_HEADS * (head_dim * head_dim + head_dim) * 4


# --------------------------------------------------------------------------- 6. which state grows

check_which_state_grows = choice_question(
    "check_which_state_grows", options="abcd", answer="3b664d54ed727af8", points=1, difficulty=1, minutes=3,
    title="which state grows in a hybrid",
    hints={"a": "a Mamba layer's state is (expand·d_model × d_state) whatever the context length.",
           "c": "one of the layers keeps every token it has seen.",
           "d": "only one kind of layer keeps every past token; the other compresses them into a fixed state."})
