"""Exercises of part 5 (gMLP, ConvMixer, RWKV): five checkers and four questions.

Each checker calls the learner's function on float64 inputs it makes (length 1, primes, keys near 100),
compares with a reference written here from the equations, and answers ✅ or ❌ with a hint that points
at the classic mistake without printing the answer (``postlib.exercises.core``).

==============================  ===================================================================
checker                         the learner writes
==============================  ===================================================================
check_spatial_gating            ``fn(z, W, b) -> s``   gMLP's spatial gating unit
check_causal_conv_step          ``fn(window, x_t, weight, bias) -> (y_t, new_window)``
check_wkv_weights               ``fn(w, u, k) -> (L, L)`` the weights each WKV output gives the past
check_rwkv5_step                ``fn(r_t, k_t, v_t, w, u, S) -> (o_t, S)`` RWKV-5's matrix-valued state
check_segment_merge             ``fn(first, second) -> merged``  the parallel form's composition
check_gmlp_spatial_parameters   a number by hand: W and b of one spatial gating unit
check_convmixer_receptive_field a number by hand: what ConvMixer-1536/20's last layer sees
predict_naive_overflow          a prediction before a run: the WKV formula in fp32 with keys ≈ 100
check_which_wkv_form            a multiple choice: which WKV form to train with, which to serve with
==============================  ===================================================================
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .core import Mismatch, exercise, expect_tensor
from .questions import choice_question, number_question, prediction

NEG = -1e38            # the empty sums' shift, as in the official kernel


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _close(a, b, tol=1e-9) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=tol, atol=tol))


# --------------------------------------------------------------------------- 1. spatial gating unit

def _sgu(z, W, b, *, norm=True, swap=False, transpose=False):
    z1, z2 = z.chunk(2, dim=-1)
    if swap:
        z1, z2 = z2, z1
    if norm:
        z2 = F.layer_norm(z2, (z2.shape[-1],))
    return z1 * ((W.T if transpose else W) @ z2 + b[:, None])


@exercise(points=2, difficulty=1, minutes=10, title="spatial gating unit")
def check_spatial_gating(fn):
    """``fn(z, W, b)``: s(Z) = Z₁ ⊙ (W·LayerNorm(Z₂) + b) for z (batch, L, 2m), W (L, L), b (L,);
    LayerNorm over the m channels, without a learned scale or shift."""
    for i, (B, L, m) in enumerate([(1, 1, 2), (2, 7, 3), (3, 13, 4)]):
        g = _gen(i)
        z = torch.randn(B, L, 2 * m, generator=g, dtype=torch.float64)
        W = torch.randn(L, L, generator=g, dtype=torch.float64).tril()
        b = torch.randn(L, generator=g, dtype=torch.float64)
        out = expect_tensor(fn(z.clone(), W.clone(), b.clone()), f"s(Z) for z of shape {tuple(z.shape)}", (B, L, m))
        if _close(out, _sgu(z, W, b)):
            continue
        if _close(out, _sgu(z, W, b, swap=True)):
            raise Mismatch("you gate the wrong half: the first half Z₁ is multiplied, the second half Z₂ is projected.")
        if _close(out, _sgu(z, W, b, norm=False)):
            raise Mismatch("almost: the half that is projected along the sequence is normalised first.")
        if L > 1 and _close(out, _sgu(z, W, b, transpose=True)):
            raise Mismatch("W[t, s] is the weight output t gives to token s: check which index of W runs over "
                           "the tokens you sum.")
        raise Mismatch(f"for z of shape {tuple(z.shape)} your output differs from s(Z) by up to "
                       f"{(out.double() - _sgu(z, W, b)).abs().max().item():.2e}.")


# --------------------------------------------------------------------------- 2. causal convolution step

@exercise(points=2, difficulty=2, minutes=10, title="causal convolution, one step",
          forbid=["torch.nn.functional.conv1d", "torch.conv1d"])
def check_causal_conv_step(fn):
    """``fn(window, x_t, weight, bias)``: one token of a causal depthwise convolution. window
    (batch, d, k − 1) holds the last k − 1 inputs (oldest first), x_t (batch, d), weight (d, k) with
    weight[:, -1] applied to the newest input, bias (d,). Returns y_t (batch, d) and the new window."""
    for i, (B, d, k, L) in enumerate([(1, 1, 1, 3), (2, 3, 4, 11), (1, 5, 9, 13)]):
        g = _gen(10 + i)
        x = torch.randn(B, L, d, generator=g, dtype=torch.float64)
        weight = torch.randn(d, k, generator=g, dtype=torch.float64)
        bias = torch.randn(d, generator=g, dtype=torch.float64)
        padded = torch.cat([x.new_zeros(B, d, k - 1), x.transpose(1, 2)], -1)      # (B, d, k − 1 + L)
        ref = (padded.unfold(-1, k, 1) * weight[:, None, :]).sum(-1) + bias[:, None]   # (B, d, L)
        window = x.new_zeros(B, d, k - 1)
        for t in range(L):
            out = fn(window.clone(), x[:, t].clone(), weight.clone(), bias.clone())
            if not isinstance(out, tuple) or len(out) != 2:
                raise Mismatch("return a pair (y_t, new_window).")
            y_t = expect_tensor(out[0], f"y_t at step {t}", (B, d))
            window = expect_tensor(out[1], f"the new window at step {t}", (B, d, k - 1))
            if _close(y_t, ref[..., t]):
                continue
            flipped = (padded[..., t:t + k] * weight.flip(-1)).sum(-1) + bias
            if k > 1 and _close(y_t, flipped):
                raise Mismatch("the kernel runs the other way: weight[:, -1] multiplies the newest input x_t.")
            if t == 0:
                raise Mismatch(f"wrong output at the first step (d = {d}, k = {k}): y_t = Σ_j weight[:, j]·input_j "
                               "+ bias over the window followed by x_t.")
            raise Mismatch(f"right at first, wrong at step {t} (k = {k}): does your new window drop the oldest "
                           "input and end with x_t?")


# --------------------------------------------------------------------------- 3. WKV weights

def _weights(w, u, k, *, gap_offset=1, bonus=True, normalise=True, causal=True):
    L = k.shape[0]
    t, i = torch.arange(L)[:, None], torch.arange(L)[None, :]
    logits = k[None, :] - (t - gap_offset - i).to(k.dtype) * w
    logits = torch.where(t == i, (u if bonus else 0.0) + k[None, :].expand(L, L), logits)
    if causal:
        logits = logits.masked_fill(i > t, float("-inf"))
    if not normalise:
        return torch.exp(logits)
    return torch.softmax(logits, dim=-1)


@exercise(points=2, difficulty=2, minutes=15, title="the weights of WKV")
def check_wkv_weights(fn):
    """``fn(w, u, k)``: for one channel (floats w > 0 and u, keys k of shape (L,)), the (L, L) matrix whose
    row t is output t's normalised weights over tokens i ≤ t: ∝ e^{k_i − (t−1−i)w} for i < t, e^{u + k_t}
    at i = t, 0 after t. (Held to 1e-6: an index tensor times a float is computed in float32.)"""
    for i, (L, w, u) in enumerate([(1, 0.5, 0.2), (7, 0.3, -1.0), (13, 1.7, 0.5)]):
        k = torch.randn(L, generator=_gen(20 + i), dtype=torch.float64) * 2
        out = expect_tensor(fn(w, u, k.clone()), f"the weights for L = {L}", (L, L))
        ref = _weights(w, u, k)
        if _close(out, ref, 1e-6):
            continue
        if _close(out, _weights(w, u, k, gap_offset=0), 1e-6):
            raise Mismatch("one step too much decay: output t reads the state after token t − 1, so token t − 1 "
                           "itself is not decayed yet (exponent −(t − 1 − i)·w).")
        if _close(out, _weights(w, u, k, bonus=False), 1e-6):
            raise Mismatch("the current token's weight is e^{u + k_t}: where is the bonus u?")
        if _close(out, _weights(w, u, k, normalise=False), 1e-6):
            raise Mismatch("each row must sum to 1: divide by the denominator.")
        if L > 1 and _close(out, _weights(w, u, k, causal=False), 1e-6):
            raise Mismatch("output t must not read tokens after t.")
        raise Mismatch(f"for L = {L}, w = {w}, u = {u} your weights differ from the expected ones by up to "
                       f"{(out.double() - ref).abs().max().item():.2e}.")
    k = torch.randn(9, generator=_gen(29), dtype=torch.float64) + 800.0       # e^800 overflows even float64
    out = torch.as_tensor(fn(0.4, 0.1, k))
    if not torch.isfinite(out).all():
        raise Mismatch("with keys near 800 your weights are NaN or inf: a row's weights do not change if every "
                       "exponent of the row is shifted by the same number.")
    if not _close(out, _weights(0.4, 0.1, k), 1e-6):
        raise Mismatch("with keys near 800 your weights differ from the expected ones.")


# --------------------------------------------------------------------------- 4. RWKV-5's matrix state, one step

def _rwkv5_step(r_t, k_t, v_t, w, u, S, *, bonus=True, read_after=False, decay_read=False):
    """o_t = r_t·(S + diag(u) k_tᵀv_t), S ← diag(w) S + k_tᵀv_t (Eagle, Peng et al. 2024, eq. for wkv_t)."""
    kv = k_t[..., :, None] * v_t[..., None, :]                           # (B, H, K, V): k_tᵀ v_t
    new_S = w[None, :, :, None] * S + kv
    if read_after:
        read = new_S
    else:
        past = w[None, :, :, None] * S if decay_read else S
        read = past + (u[None, :, :, None] * kv if bonus else kv)
    return torch.einsum("bhk,bhkv->bhv", r_t, read), new_S


@exercise(points=3, difficulty=2, minutes=15, title="RWKV-5's matrix state, one step")
def check_rwkv5_step(fn):
    """``fn(r_t, k_t, v_t, w, u, S)``: one token of RWKV-5 for every head. r_t, k_t (B, H, K); v_t (B, H, V);
    w (H, K), the decay factors in (0, 1); u (H, K), the bonus; S (B, H, K, V), the state after the previous
    token. Returns o_t = r_t·(S + diag(u)·k_tᵀv_t) of shape (B, H, V) and the new state diag(w)·S + k_tᵀv_t."""
    for i, (B, H, K, V, L) in enumerate([(1, 1, 1, 1, 1), (2, 3, 4, 5, 13), (1, 2, 3, 2, 7)]):
        g = _gen(30 + i)
        w = torch.rand(H, K, generator=g, dtype=torch.float64) * 0.9 + 0.05
        u = torch.randn(H, K, generator=g, dtype=torch.float64)
        r, k = (torch.randn(B, L, H, K, generator=g, dtype=torch.float64) for _ in range(2))
        v = torch.randn(B, L, H, V, generator=g, dtype=torch.float64)
        S_ref = S = torch.randn(B, H, K, V, generator=g, dtype=torch.float64)    # some earlier tokens' state
        for t in range(L):
            args = (r[:, t], k[:, t], v[:, t])
            out = fn(*(x.clone() for x in args), w.clone(), u.clone(), S.clone())
            if not isinstance(out, tuple) or len(out) != 2:
                raise Mismatch("return a pair (o_t, new_state).")
            o_t = expect_tensor(out[0], f"o_t at token {t}", (B, H, V))
            new_S = expect_tensor(out[1], f"the new state at token {t}", (B, H, K, V))
            o_ref, S_next = _rwkv5_step(*args, w, u, S_ref)
            if _close(o_t, o_ref) and _close(new_S, S_next):
                S, S_ref = new_S, S_next
                continue
            if _close(o_t, _rwkv5_step(*args, w, u, S_ref, decay_read=True)[0]):
                raise Mismatch("the state after token t − 1 is read as it is: the decay diag(w) belongs to the "
                               "update, for the token after this one.")
            if _close(o_t, _rwkv5_step(*args, w, u, S_ref, read_after=True)[0]):
                raise Mismatch("you read the state after adding the current token: the current token enters the "
                               "output once, weighted by the bonus u instead of by 1.")
            if _close(o_t, _rwkv5_step(*args, w, u, S_ref, bonus=False)[0]):
                raise Mismatch("the current token enters the output as diag(u)·k_tᵀv_t: where is the bonus u?")
            if _close(o_t, o_ref) and not _close(new_S, S_next):
                raise Mismatch(f"o_t is right at token {t}, but the new state is not diag(w)·S + k_tᵀv_t (no bonus "
                               "in the state: it is for the current token only).")
            raise Mismatch(f"at token {t} (B={B}, H={H}, K={K}, V={V}) your o_t differs from r_t·(S + "
                           f"diag(u)k_tᵀv_t) by up to {(o_t.double() - o_ref).abs().max().item():.2e}.")


# --------------------------------------------------------------------------- 5. merging two segments

def _segment(k, v, w):
    """Sums over a segment of tokens, as of its last token: (p, a, b, d) with e^p·(a, b) the sums, d = len·w."""
    p = (k - (len(k) - 1 - torch.arange(len(k), dtype=k.dtype))[:, None] * w).amax(0)
    e = torch.exp(k - (len(k) - 1 - torch.arange(len(k), dtype=k.dtype))[:, None] * w - p)
    return p, (e * v).sum(0), e.sum(0), len(k) * w


@exercise(points=3, difficulty=3, minutes=20, title="merging two segments")
def check_segment_merge(fn):
    """``fn(first, second)``: each segment is (p, a, b, d), tensors of shape (C,): its sums
    Σ e^{−(T−i)w + k_i}(v_i, 1) over its tokens, as of its last token T, stored as e^{p}·(a, b), and its
    total decay d (its length × w). Return the same for the first segment followed by the second. An
    empty segment is (−1e38, 0, 0, 0)."""
    C = 3
    w = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    for i, (n1, n2, offset) in enumerate([(1, 1, 0.0), (4, 7, 0.0), (5, 2, 500.0), (0, 3, 0.0), (3, 0, 0.0)]):
        g = _gen(40 + i)
        k = torch.randn(n1 + n2, C, generator=g, dtype=torch.float64) * 2 + offset
        v = torch.randn(n1 + n2, C, generator=g, dtype=torch.float64)
        empty = (torch.full((C,), NEG, dtype=torch.float64), torch.zeros(C, dtype=torch.float64),
                 torch.zeros(C, dtype=torch.float64), torch.zeros(C, dtype=torch.float64))
        first = _segment(k[:n1], v[:n1], w) if n1 else empty
        second = _segment(k[n1:], v[n1:], w) if n2 else empty
        P, A, Bs, D = _segment(k, v, w)
        out = fn(tuple(x.clone() for x in first), tuple(x.clone() for x in second))
        if not isinstance(out, tuple) or len(out) != 4:
            raise Mismatch("return a tuple (p, a, b, d).")
        p, a, b, d = (torch.as_tensor(x, dtype=torch.float64) for x in out)
        what = {2: "sums near e^500", 3: "an empty first segment", 4: "an empty second segment"}.get(i, "")
        if not all(torch.isfinite(x).all() for x in (p, a, b)):
            raise Mismatch(f"{what or 'two segments'}: NaN or inf in your result: scale both segments to the larger "
                           "of their exponents, so each factor is e^(something ≤ 0).")
        if not _close(d, D + torch.zeros_like(D)):
            raise Mismatch("the merged decay is the decay over both segments: the decays add.")
        scale = torch.exp(p - P)
        if _close(a * scale, A) and _close(b * scale, Bs):
            continue
        p_nd, a_nd = _without_decay(first, second)
        if n1 and n2 and _close(a * scale, a_nd * torch.exp(p_nd - P)):
            raise Mismatch("the first segment's sums are as of its own last token: before adding, decay them over "
                           "the second segment (its total decay d₂).")
        raise Mismatch(f"{what or f'segments of {n1} and {n2} tokens'}: the merged sums e^p·(a, b) are wrong.")


def _without_decay(first, second):
    """The classic slip: adding the first segment's sums without decaying them over the second."""
    (p1, a1, _, _), (p2, a2, _, _) = first, second
    p = torch.maximum(p1, p2)
    return p, torch.exp(p1 - p) * a1 + torch.exp(p2 - p) * a2


# --------------------------------------------------------------------------- 6-7. numbers by hand

GMLP_MAX_LEN = 2048
CONVMIXER_DEPTH, CONVMIXER_KERNEL = 20, 9         # ConvMixer-1536/20 uses 9 × 9 depthwise kernels


@number_question(points=1, difficulty=1, minutes=5, title="gMLP's spatial parameters", rel_tol=0.001,
                 near={0.5: "about half: the causal mask zeroes the upper triangle when it is applied, but W is "
                            "stored (and trained) whole.",
                       1 / GMLP_MAX_LEN: "that is one row: W holds a weight for every (output, token) pair."})
def check_gmlp_spatial_parameters():
    """W (max_len × max_len) and b (max_len) of one spatial gating unit at max_len = 2048."""
    return GMLP_MAX_LEN ** 2 + GMLP_MAX_LEN


@number_question(points=1, difficulty=1, minutes=5, title="ConvMixer's receptive field", rel_tol=0.001,
                 near={(CONVMIXER_DEPTH * CONVMIXER_KERNEL) / (CONVMIXER_DEPTH * (CONVMIXER_KERNEL - 1) + 1):
                       "a k-wide window adds k − 1 new positions per layer, not k: the layers' windows overlap.",
                       CONVMIXER_DEPTH / (CONVMIXER_DEPTH * (CONVMIXER_KERNEL - 1) + 1): "that is the depth alone."})
def check_convmixer_receptive_field():
    """Patches along one axis that one output of the 20th block sees (9 × 9 depthwise kernels)."""
    return CONVMIXER_DEPTH * (CONVMIXER_KERNEL - 1) + 1


# --------------------------------------------------------------------------- 8. a prediction before a run

def _overflow_option(result) -> str:
    naive_finite, stable_finite, stable_close = result
    if naive_finite:
        return "a"
    return "b" if (stable_finite and stable_close) else "c"


predict_naive_overflow = prediction(
    "predict_naive_overflow", options="abc", answer="382e9a9fefed1e50", observe=_overflow_option,
    describe=lambda r: (f"the formula as written {'stays finite' if r[0] else 'gives NaN or inf'}; the running-maximum "
                        f"loop {'stays finite and matches float64' if r[1] and r[2] else 'fails'}"),
    points=1, difficulty=2, minutes=3, title="WKV with keys near 100 in float32",
    hints={"a": "float32 tops out near e^88.7: what is e^100?",
           "c": "the loop only ever exponentiates numbers ≤ 0: every term is at most 1."})


# --------------------------------------------------------------------------- 9. which form when

check_which_wkv_form = choice_question(
    "check_which_wkv_form", options="abc", answer="45501f4ec37d0e11", points=1, difficulty=1, minutes=3,
    title="which WKV form to train with, which to serve with",
    hints={"b": "the loop is the reference, but in training it spends one small step per token: the parallel "
                "form computes the same outputs in a few large steps.",
           "c": "when serving, only the newest token is new: the state after the prefix already holds all it needs."})
