"""Exercises of the "Sparse attention" chapter: six checkers and three conceptual questions.

=================================  ================================================================
checker                            the learner writes
=================================  ================================================================
check_sliding_mask                 ``fn(length, window, causal) -> mask``  (L, L) bool
check_longformer_mask              ``fn(length, window, global_tokens) -> mask``  (L, L) bool, non-causal
check_window_attention             ``fn(q, k, v, window) -> out``  causal sliding window, (B, H, L, D),
                                   without an (L × L) score matrix
check_tiles_touched                ``fn(length, window, tile) -> int``  tiles a causal window computes
check_longnet_mix                  ``fn(outs, lses) -> out``  LongNet's mixture of branches
check_receptive_field              ``fn(mask, token, layers) -> reached``  (L,) bool
check_layers_to_connect            a number: layers a causal window needs to carry token 0 to the last
check_which_pattern_short_paths    a choice: which pattern keeps every path ≤ 2 layers
predict_longnet_vs_union           a prediction: does LongNet's mixture equal the union mask?
=================================  ================================================================

Each checker compares with ``postlib.sparse`` on float64 inputs at awkward lengths and never
prints the answer; postlib's own functions are switched off while the learner's code runs.
"""
from __future__ import annotations

import math

import torch

from ..bench import peak_memory
from ..sparse import attention_mask, make_pattern, sparse_attention
from ..sparse.analysis import reach_matrix
from ..sparse.attention import masked_attention
from ..sparse.longnet import mix_branches
from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction


def _mask(out, what, length):
    out = expect_tensor(out, what, (length, length))
    if out.dtype != torch.bool:
        raise Mismatch(f"{what} should be a boolean tensor (True where query i may attend key j), got {out.dtype}.")
    return out


@exercise(points=1, difficulty=1, minutes=5, title="the sliding-window mask")
def check_sliding_mask(fn):
    """``fn(length, window, causal)``: True where |i − j| <= window // 2 (and j <= i when causal)."""
    for length, window, causal in ((1, 1, False), (7, 3, False), (13, 4, True), (37, 9, True), (20, 1, True)):
        got = _mask(fn(length, window, causal), f"the mask for length {length}, window {window}", length)
        want = attention_mask("sliding", length, causal=causal, window=window)
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            raise Mismatch("the mask is transposed: rows are queries i, columns keys j.")
        i = torch.arange(length)
        if torch.equal(got, (i[:, None] - i[None, :]).abs() < window // 2):
            raise Mismatch("off by one at the edge: the window includes distance exactly window // 2.")
        if causal and torch.equal(got, attention_mask("sliding", length, window=window)):
            raise Mismatch("with causal=True a query may not see later keys (j > i).")
        raise Mismatch(f"for length {length}, window {window}, causal={causal} the mask differs in "
                       f"{int((got != want).sum())} entries.")


@exercise(points=2, difficulty=1, minutes=10, title="Longformer's global tokens")
def check_longformer_mask(fn):
    """``fn(length, window, global_tokens)``: the sliding window plus global rows and columns (not causal)."""
    for length, window, globals_ in ((7, 2, [0]), (13, 4, [0, 5]), (37, 6, [3, 20, 36]), (5, 3, [])):
        got = _mask(fn(length, window, list(globals_)), f"the mask for length {length}", length)
        want = attention_mask("longformer", length, window=window, global_tokens=globals_)
        if torch.equal(got, want):
            continue
        rows_only = attention_mask("sliding", length, window=window)
        cols_only = rows_only.clone()
        rows_only[globals_, :] = True
        cols_only[:, globals_] = True
        if globals_ and torch.equal(got, rows_only):
            raise Mismatch("global tokens attend everywhere, and every token also attends *them*: add the columns.")
        if globals_ and torch.equal(got, cols_only):
            raise Mismatch("every token attends the global ones; the global tokens must also attend every token "
                           "(their rows).")
        raise Mismatch(f"for length {length}, window {window}, globals {globals_} the mask differs in "
                       f"{int((got != want).sum())} entries.")


# The memory check of check_window_attention: at L = 4096 a full (L × L) float32 matrix takes 64 MiB (an
# (L × L) bool mask 16 MiB); a window of 16 keys per query about 1 MiB. A quarter of the scores is the limit.
WINDOW_CHECK_L = 4096
WINDOW_PEAK_LIMIT_BYTES = WINDOW_CHECK_L ** 2 * 4 // 4


def _qkv(shape, seed):
    b, h, L, d = shape
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, L, d, generator=g, dtype=torch.float64) for _ in range(3)]


@exercise(points=3, difficulty=2, minutes=20, title="causal sliding-window attention",
          forbid=["torch.nn.functional.scaled_dot_product_attention"])
def check_window_attention(fn):
    """``fn(q, k, v, window)``: causal attention where query i sees keys i − window // 2 … i. The checker
    also calls it at L = 4096 in float32 and measures its peak memory (``postlib.bench.peak_memory``): an
    (L × L) score matrix alone takes 64 MiB there, a window of 16 needs about 1 MiB."""
    for i, (shape, window) in enumerate((((1, 1, 1, 4), 3), ((2, 3, 13, 8), 4), ((1, 2, 37, 5), 9))):
        q, k, v = _qkv(shape, i)
        out = expect_tensor(fn(q, k, v, window), f"the output for q {tuple(q.shape)}", shape).double()
        want = masked_attention(q, k, v, attention_mask("sliding", shape[2], causal=True, window=window))
        if torch.allclose(out, want, rtol=1e-8, atol=1e-10):
            continue
        full = masked_attention(q, k, v, attention_mask("sliding", shape[2], window=window))
        if torch.allclose(out, full, rtol=1e-8, atol=1e-10):
            raise Mismatch("this is the two-sided window: a causal query must not see keys after it.")
        if shape[2] > 1 and torch.allclose(out[:, :, 0], want[:, :, 0], rtol=1e-8, atol=1e-10):
            raise Mismatch("the first query is right but later ones are not: each query sees window // 2 earlier "
                           "keys and itself, and the softmax runs over exactly those.")
        raise Mismatch(f"for q {tuple(q.shape)}, window {window} the output differs by up to "
                       f"{(out - want).abs().max():.2e}.")
    q, k, v = (t.float() for t in _qkv((1, 1, WINDOW_CHECK_L, 8), 9))
    result = []
    peak = peak_memory(lambda: result.append(fn(q, k, v, 16)))
    out = expect_tensor(result[0], f"the output at L = {WINDOW_CHECK_L}", (1, 1, WINDOW_CHECK_L, 8))
    ref = sparse_attention(q, k, v, "sliding", causal=True, window=16, backend="torch")
    if not torch.allclose(out.float(), ref, rtol=1e-4, atol=1e-5):
        raise Mismatch(f"right at small lengths but not at L = {WINDOW_CHECK_L}: check the keys near the start of "
                       "the sequence.")
    if peak > WINDOW_PEAK_LIMIT_BYTES:
        raise Mismatch(f"right, but at L = {WINDOW_CHECK_L} your function allocates {peak / 2 ** 20:.0f} MiB, where "
                       f"an (L × L) float32 score matrix takes {WINDOW_CHECK_L ** 2 * 4 / 2 ** 20:.0f} MiB: give "
                       "each query only its window of keys instead of masking a full matrix.")


@exercise(points=2, difficulty=2, minutes=10, title="tiles a causal window touches")
def check_tiles_touched(fn):
    """``fn(length, window, tile)``: how many (tile × tile) blocks of the L × L matrix hold at least one
    allowed pair of the causal sliding window (the blocks a block-sparse kernel computes)."""
    for length, window, tile in ((1, 1, 1), (10, 1, 4), (64, 16, 16), (100, 9, 16), (1000, 256, 64), (4096, 256, 64)):
        got = fn(length, window, tile)
        if isinstance(got, torch.Tensor):
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
            raise Mismatch(f"return an integer count, got {got!r}.")
        any_, _ = make_pattern("sliding", length, causal=True, window=window).tile_layout(tile)
        want = int(any_.sum())
        if int(got) == want:
            continue
        n = -(-length // tile)
        if int(got) == n * (n + 1) // 2:
            raise Mismatch("that counts every tile on or below the diagonal: the window is narrower than that.")
        raise Mismatch(f"for L = {length}, window {window}, tile {tile}: reconsider which key tiles the first and the "
                       f"last query of a query tile can reach.")


@exercise(points=3, difficulty=2, minutes=15, title="LongNet's mixture of branches")
def check_longnet_mix(fn):
    """``fn(outs, lses)``: combine branch outputs ``outs[k]`` (B, H, L, D) with weights proportional to each
    branch's softmax denominator exp(lses[k]) (B, H, L); lse = −inf where a branch skips a position; a
    position no branch covers gets 0."""
    g = torch.Generator().manual_seed(3)
    for n, L in ((1, 5), (3, 13), (2, 1)):
        outs = [torch.randn(2, 2, L, 4, generator=g, dtype=torch.float64) for _ in range(n)]
        lses = [torch.randn(2, 2, L, generator=g, dtype=torch.float64) * 30 for _ in range(n)]
        if n > 1:
            lses[0][..., 0] = float("-inf")               # branch 0 skips position 0
        if L > 2:
            for lse, out in zip(lses, outs):
                lse[..., 2] = float("-inf")               # position 2: no branch
                out[..., 2, :] = 0.0
        got = expect_tensor(fn([o.clone() for o in outs], [x.clone() for x in lses]), "the mixture",
                            (2, 2, L, 4)).double()
        want = mix_branches(outs, lses)
        if torch.allclose(got, want, rtol=1e-9, atol=1e-12):
            continue
        if not torch.isfinite(got).all():
            raise Mismatch("NaN or inf in the result: with lse up to ±90, exponentiate after subtracting the "
                           "largest lse per position, and give positions no branch covers a 0.")
        if torch.allclose(got, sum(outs) / n, rtol=1e-9, atol=1e-12):
            raise Mismatch("a plain average ignores how much attention mass each branch found: weight by exp(lse).")
        raise Mismatch(f"with {n} branches at L = {L} the mixture differs by up to {(got - want).abs().max():.2e}.")


@exercise(points=3, difficulty=2, minutes=15, title="receptive field after k layers",
          forbid=["torch.linalg.matrix_power"])
def check_receptive_field(fn):
    """``fn(mask, token, layers)``: (L,) bool, True for the tokens whose information reaches ``token``
    through ``layers`` layers (one layer: i reads j when mask[i, j]; the token itself counts at 0 layers)."""
    cases = (("sliding", dict(window=5), 20, 19, 2), ("dilated", dict(segment_lengths=[4, 16], dilations=[1, 4]),
                                                      32, 31, 2), ("sliding", dict(window=3), 9, 0, 3),
             ("longformer", dict(window=2, global_tokens=[0]), 17, 16, 0))
    for kind, params, L, token, layers in cases:
        mask = attention_mask(kind, L, causal=True, **params)
        got = expect_tensor(fn(mask.clone(), token, layers), f"the reached tokens for L = {L}", (L,))
        want = reach_matrix(mask, layers)[token]
        if torch.equal(got.bool(), want):
            continue
        if layers and torch.equal(got.bool(), reach_matrix(mask, layers)[:, token]):
            raise Mismatch("that is where the token's information *goes*; the question is which tokens reach it "
                           "(mind the orientation of mask[i, j]: i reads j).")
        if layers > 1 and torch.equal(got.bool(), mask[token]):
            raise Mismatch("that is one layer: compose the mask `layers` times.")
        raise Mismatch(f"for {kind} at L = {L}, token {token}, {layers} layers: {int((got.bool() != want).sum())} "
                       "positions differ.")


# --------------------------------------------------------------------------- conceptual questions

WINDOW_L, WINDOW_W = 16384, 256


@number_question(points=1, difficulty=1, minutes=5, title="layers to cross the sequence", rel_tol=0.0,
                 abs_tol=0.5, near={2.0: "each causal layer moves information window // 2 positions, not window.",
                                    0.5: "a layer moves information window // 2 positions: count again."})
def check_layers_to_connect():
    """Layers a causal sliding window (window 256: each token sees the 128 before it) needs before token 0
    can influence token 16383."""
    return math.ceil((WINDOW_L - 1) / (WINDOW_W // 2))


check_which_pattern_short_paths = choice_question(
    "check_which_pattern_short_paths", options="abc", answer="594ef2b5abb23ceb", points=1, difficulty=1,
    minutes=3, title="which pattern keeps paths short",
    hints={"a": "a window moves information a fixed distance per layer: far tokens need many layers.",
           "b": "random blocks shorten paths to about log L layers, but not to a constant."})


def _longnet_option(max_rel_diff: float) -> str:
    return "a" if max_rel_diff < 1e-10 else "b"


predict_longnet_vs_union = prediction(
    "predict_longnet_vs_union", options="ab", answer="b7e8ab83655738a9", observe=_longnet_option,
    describe=lambda d: f"a largest relative difference of {d:.2e} between the two outputs",
    points=1, difficulty=2, minutes=3, title="LongNet against its union mask",
    hints={"a": "a key reached by two branches enters both denominators: the mixture counts it twice."})
