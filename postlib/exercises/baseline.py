"""Exercises of chapter 1 (the softmax-attention baseline): five checkers.

Each checker calls the learner's function on random float64 inputs with awkward
shapes (length 1, primes, L_q ≠ L_k), compares with postlib's reference, prints
✅/❌ with a hint that points at the mistake without printing the answer, and
returns True/False. None of them raises (see ``postlib.exercises.run_checker``).

=============================  ======================================================
checker                        the learner writes
=============================  ======================================================
check_softmax_attention        ``fn(q, k, v) -> out``            (B, H, L, D) tensors
check_causal_mask              ``fn(length_q, length_k) -> mask``  bool (L_q, L_k)
check_online_softmax_merge     ``fn(m_a, l_a, acc_a, m_b, l_b, acc_b) -> (m, l, acc)``
check_kv_cache_step            ``fn(q_t, k_t, v_t, cache) -> (out_t, new_cache)``
check_attention_flops          ``fn(length, head_dim) -> int``
check_kv_cache_gib             a number by hand: GiB of a KV cache
predict_flash_exactness        a prediction before a run: is FlashAttention exact?
check_which_form_decoding      a multiple choice: which form for decoding
=============================  ======================================================
"""
from __future__ import annotations

import math

import torch

from ..attention.derive import attention_costs
from ..attention.flash import online_softmax_update
from ..attention.softmax import causal_mask, softmax_attention
from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction

# (batch, heads, L_q, L_k, head_dim, head_dim_v): length 1, primes, L_q ≠ L_k, D ≠ D_v.
ATTENTION_SHAPES = [(1, 1, 1, 1, 4, 4), (2, 3, 7, 7, 8, 8), (1, 2, 5, 13, 16, 6), (1, 1, 100, 63, 32, 32)]


def _qkv(shape, seed, scale=1.0):
    b, h, lq, lk, d, dv = shape
    gen = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(b, h, lq, d, generator=gen, dtype=torch.float64)
    k = scale * torch.randn(b, h, lk, d, generator=gen, dtype=torch.float64)
    v = torch.randn(b, h, lk, dv, generator=gen, dtype=torch.float64)
    return q, k, v


def _close(a, b, tol=1e-9) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


# --------------------------------------------------------------------------- 1. softmax attention

@exercise(points=2, difficulty=1, minutes=10, title="softmax attention",
          forbid=["torch.nn.functional.scaled_dot_product_attention",
                  "torch.nn.functional.multi_head_attention_forward"])
def check_softmax_attention(fn):
    """``fn(q, k, v)``: non-causal softmax(QKᵀ/√d)V for (batch, heads, L, head_dim) tensors."""
    for i, shape in enumerate(ATTENTION_SHAPES):
        q, k, v = _qkv(shape, seed=i)
        b, h, lq, lk, d, dv = shape
        out = expect_tensor(fn(q.clone(), k.clone(), v.clone()), f"the output for q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}", (b, h, lq, dv))
        ref = softmax_attention(q, k, v)
        if _close(out, ref):
            continue
        if _close(out, softmax_attention(q, k, v, scale=1.0)):
            raise Mismatch("very close! Compare your scores with Eq. 1 of Vaswani et al.: is something "
                           "dividing them?")
        if lq == lk and _close(out, torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-2) @ v):
            raise Mismatch("the weights of each query should sum to 1 over the keys: check the dim of your softmax.")
        raise Mismatch(f"for shape q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} the output differs "
                       f"from the reference by up to {(out.double() - ref).abs().max().item():.2e}.")
    # Large scores: a softmax that exponentiates raw scores overflows to inf/inf = NaN.
    q, k, v = _qkv((1, 1, 9, 9, 16, 16), seed=99, scale=30.0)
    out = fn(q, k, v)
    if not torch.isfinite(torch.as_tensor(out)).all():
        raise Mismatch("with large scores (about ±1000) your output has NaN or inf. A softmax is unchanged by "
                       "subtracting the same number from every score of a row: which number keeps exp() ≤ 1?")
    if not _close(out, softmax_attention(q, k, v)):
        raise Mismatch("with large scores (about ±1000) your output differs from the reference.")


# --------------------------------------------------------------------------- 2. causal mask

@exercise(points=2, difficulty=2, minutes=10, title="causal mask")
def check_causal_mask(fn):
    """``fn(length_q, length_k)``: bool (L_q, L_k), True where query i may attend to key j."""
    for lq, lk in [(7, 7), (13, 13), (1, 1), (3, 8), (1, 5)]:
        mask = expect_tensor(fn(lq, lk), f"the mask for length_q={lq}, length_k={lk}", (lq, lk))
        if mask.dtype != torch.bool:
            raise Mismatch(f"return a boolean tensor (True = may attend), got dtype {mask.dtype}.")
        ref = causal_mask(lq, lk)
        if torch.equal(mask, ref):
            continue
        if lq == lk and torch.equal(mask, torch.tril(torch.ones(lq, lk, dtype=torch.bool), -1)):
            raise Mismatch("almost: may a token attend to itself?")
        if torch.equal(mask, ~ref):
            raise Mismatch("your mask is inverted: True should mean 'query i MAY attend to key j'.")
        if lq != lk and torch.equal(mask, torch.tril(torch.ones(lq, lk, dtype=torch.bool))):
            raise Mismatch(f"right for L_q = L_k, but with length_q={lq} < length_k={lk} (a KV cache) the "
                           "queries are the LAST L_q positions of the sequence, not the first.")
        raise Mismatch(f"for length_q={lq}, length_k={lk}, {int((mask != ref).sum())} entries are wrong.")


# --------------------------------------------------------------------------- 3. online-softmax merge

def _block_stats(scores, values):
    lead = scores.shape[:-1]
    empty = (torch.full(lead, -math.inf, dtype=torch.float64), torch.zeros(lead, dtype=torch.float64),
             torch.zeros(*lead, values.shape[-1], dtype=torch.float64))
    if scores.shape[-1] == 0:
        return empty  # a block with no keys: the state FlashAttention starts from
    return online_softmax_update(*empty, scores, values)


@exercise(points=4, difficulty=3, minutes=25, title="online-softmax merge")
def check_online_softmax_merge(fn):
    """``fn(m_a, l_a, acc_a, m_b, l_b, acc_b)``: the statistics of blocks A ∪ B.

    m, l: (batch, heads, L_q); acc: (batch, heads, L_q, D_v); each block's l and
    acc are relative to its own m (FlashAttention's running statistics).
    """
    cases = [((2, 3, 5, 13, 8, 8), 6, 1.0, "two random blocks"),
             ((1, 1, 1, 2, 4, 3), 1, 1.0, "one key per block"),
             ((1, 2, 7, 11, 4, 4), 4, 30.0, "scores of about ±1000"),
             ((1, 1, 4, 7, 4, 2), 0, 1.0, "an empty first block (m = -inf, l = 0, acc = 0)")]
    for shape, split, scale, what in cases:
        q, k, v = _qkv(shape, seed=split + 7, scale=scale)
        scores = q @ k.transpose(-2, -1) / math.sqrt(shape[4])
        a = _block_stats(scores[..., :split], v[:, :, :split])
        b = _block_stats(scores[..., split:], v[:, :, split:])
        out = fn(*(t.clone() for t in a + b))
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            raise Mismatch("return the three merged statistics as a tuple (m, l, acc).")
        m, l, acc = out
        m = expect_tensor(m, "m", a[0].shape)
        l = expect_tensor(l, "l", a[1].shape)
        acc = expect_tensor(acc, "acc", a[2].shape)
        if not (torch.isfinite(m).all() and torch.isfinite(l).all() and torch.isfinite(acc).all()):
            raise Mismatch(f"with {what} your statistics contain NaN or inf. Which reference point keeps every "
                           "exponent ≤ 0, and what should a block with no keys contribute?")
        if not _close(m, scores.amax(-1)):
            raise Mismatch(f"with {what}: m should be the running maximum of all scores seen (both blocks).")
        if not _close(acc / l[..., None], softmax_attention(q, k, v)):
            raise Mismatch(f"with {what}: acc / l is not the softmax-weighted average over both blocks. Both "
                           "blocks' statistics are relative to their own maxima: what must happen to them "
                           "before they can be added?")
        if not _close(l, torch.exp(scores - m[..., None]).sum(-1)):
            raise Mismatch(f"with {what}: acc / l is right, but l is not Σ exp(s − m) for your m.")


# --------------------------------------------------------------------------- 4. KV-cache decoding step

@exercise(points=3, difficulty=2, minutes=15, title="KV-cache decoding step",
          forbid=["torch.nn.functional.scaled_dot_product_attention"])
def check_kv_cache_step(fn):
    """``fn(q_t, k_t, v_t, cache)``: one decoding step with a KV cache.

    q_t, k_t, v_t: (batch, heads, 1, head_dim); cache = {"k": (B, H, T, D), "v": (B, H, T, D_v)}
    holds the T earlier tokens. Return (out_t of shape (B, H, 1, D_v), the cache with this token added).
    """
    for shape in [(1, 1, 1, 1, 4, 4), (2, 3, 11, 11, 8, 8), (1, 2, 6, 6, 4, 5)]:
        q, k, v = _qkv(shape, seed=shape[2])
        b, h, length, _, d, dv = shape
        ref = softmax_attention(q, k, v, causal=True)
        cache = {"k": q.new_zeros(b, h, 0, d), "v": q.new_zeros(b, h, 0, dv)}
        for t in range(length):
            out = fn(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], cache)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise Mismatch("return a pair (out_t, new_cache).")
            y, cache = out
            y = expect_tensor(y, f"out_t at step {t}", (b, h, 1, dv))
            if not (isinstance(cache, dict) and {"k", "v"} <= set(cache)):
                raise Mismatch("new_cache should be a dict with keys 'k' and 'v', like the cache you were given.")
            expect_tensor(cache["k"], f"new_cache['k'] after {t + 1} steps", (b, h, t + 1, d))
            expect_tensor(cache["v"], f"new_cache['v'] after {t + 1} steps", (b, h, t + 1, dv))
            if not _close(y, ref[:, :, t:t + 1]):
                hint = ("" if t == 0 else " The first step was right: which keys may token t see, and are "
                        "they all in the cache when you attend?")
                raise Mismatch(f"for {length} tokens, the output at step {t} differs from causal attention.{hint}")


# --------------------------------------------------------------------------- 5. FLOP count

@exercise(points=1, difficulty=1, minutes=5, title="attention FLOPs")
def check_attention_flops(fn):
    """``fn(length, head_dim)``: FLOPs of QKᵀ and PV for one head (L_q = L_k = length, D_v = head_dim).

    A multiply-add counts as 2 FLOPs; the softmax itself is not counted.
    """
    for length, head_dim in [(1, 1), (7, 3), (1024, 64), (4097, 128)]:
        got = fn(length, head_dim)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise Mismatch(f"return a number, got {type(got).__name__}.")
        want = attention_costs(length, head_dim)["flops_materialised"]
        if got == want:
            continue
        ratio = got / want
        if math.isclose(ratio, 0.5) or math.isclose(ratio, 0.25):
            raise Mismatch(f"off by a factor of {1 / ratio:.0f}: count both matrix products, and a multiply-add "
                           "as 2 FLOPs.")
        if length > 1 and math.isclose(got * length, want, rel_tol=1e-9):
            raise Mismatch("how many scores does one head compute for a sequence of length L?")
        raise Mismatch(f"for length={length}, head_dim={head_dim} your count is {ratio:.3g}× the expected one.")



# --------------------------------------------------------------------------- 6. a number by hand

KV_LAYERS, KV_D_MODEL, KV_TOKENS, KV_BYTES = 32, 4096, 8192, 2       # the model the chapter describes


@number_question(points=1, difficulty=1, minutes=5, title="KV-cache memory", rel_tol=0.01,
                 near={0.5: "about half: every layer caches both K and V.",
                       1 / KV_LAYERS: "too small by the number of layers: each layer keeps its own cache.",
                       2.0: "twice too large: fp16 stores a number in 2 bytes.",
                       2**30 / 1e9: "that is in GB (10⁹ bytes); the question asks GiB (2³⁰ bytes).",
                       2**30: "give the answer in GiB, not in bytes."})
def check_kv_cache_gib():
    """GiB of the KV cache: K and V, every layer, d_model numbers per token, fp16."""
    return 2 * KV_LAYERS * KV_TOKENS * KV_D_MODEL * KV_BYTES / 2**30


# --------------------------------------------------------------------------- 7. a prediction before a run

def _flash_option(err: float) -> str:
    return "a" if err < 1e-12 else ("b" if err < 1e-4 else "c")


predict_flash_exactness = prediction(
    "predict_flash_exactness", options="abc", answer="c6dde263369573ca", observe=_flash_option,
    describe=lambda err: f"a relative RMS difference of at most {err:.1e} over every tile size",
    points=1, difficulty=2, minutes=3, title="is FlashAttention exact?",
    hints={"b": "the merge rescales both blocks to one common maximum: what is left to approximate?",
           "c": "nothing is dropped or sampled; every score is computed, only in a different order."})


# --------------------------------------------------------------------------- 8. which form when

check_which_form_decoding = choice_question(
    "check_which_form_decoding", options="abc", answer="20d1b17408cd2a25", points=1, difficulty=1, minutes=3,
    title="which form for decoding",
    hints={"a": "at each step only the newest query is new: recomputing every query repeats O(L²) work per token.",
           "c": "FlashAttention saves memory, not the work: it would still recompute every query at every step."})
