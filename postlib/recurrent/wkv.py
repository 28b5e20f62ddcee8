"""RWKV-4's WKV operator (Peng et al. 2023): linear attention with a per-channel decay and a bonus.

For one channel, with decay rate w > 0 and bonus u (the paper's WKV operator, in "Time mixing"):

    wkv_t = (Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u + k_t} v_t)
            / (Σ_{i<t} e^{−(t−1−i)w + k_i}     + e^{u + k_t})

It is causal softmax attention whose score for "query" t and key i, s_{t,i} = k_i − (t−1−i)w
(or u + k_t on the diagonal), does not depend on the query: the past is forgotten at rate w and
every token is weighted by e^{k_i}. RWKV checkpoints store ``time_decay`` with w = exp(time_decay),
so w is always positive; ``time_first`` is u.

Numerically, e^{k_i} overflows fp32 for k_i > 88. Every form here carries a *running maximum*
exponent p beside the numerator a and denominator b, meaning the sums e^{p}·a and e^{p}·b — the
official CUDA kernel's (aa, bb, pp). A ratio of two sums that share a factor e^{p} does not depend
on p (``postlib/recurrent/wkv_derive.py`` proves it in sympy), so each step picks p = the largest
exponent in play and every exp() it takes is of a number ≤ 0.

Forms, all equal to ``wkv_definition`` (the equation above, summed directly) — proved in
``tests/recurrent/test_wkv.py``:

* ``"recurrent"``  the RNN loop, one token at a time (the reference the fast forms are held to);
* ``"parallel"``   O(L) memory, never an L × L matrix: chunks of T tokens in closed form (one exp per
                   token and a running sum, ``_wkv_chunked``), the state carried from chunk to chunk
                   by ``merge`` (``_carry``: L/T small steps instead of L). ``chunk_plan`` picks T and
                   the dtype so no term leaves the float range; when no chunk length can (keys spread
                   over more than ~600), the whole sequence goes through an associative scan
                   (``wkv_scan.py``: the state after a segment, (p, a, b) with the segment's total
                   decay, composes associatively — ``combine``), exact for any inputs;
* ``"triton"``     ``postlib.kernels.wkv`` (the same chunked closed form as a GPU kernel);
* ``"auto"``       Triton for CUDA tensors; on CPU the loop for a few tokens, the parallel form beyond.

State for streaming: ``WKVState(num, den, shift)``, each (batch, channels), the sums over all
tokens seen so far *as of the last one* (no decay applied for the next token yet), i.e. the
official kernel's (aa, bb, pp). ``wkv(x[:, :n]) then wkv(x[:, n:], state=...)`` ≡ ``wkv(x)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._checks import check_choice, check_finite, check_same, check_tensor
from .wkv_scan import NEG_INF, combine, merge, wkv_scan  # noqa: F401  (combine, merge: public here too)

BACKENDS = ("auto", "recurrent", "parallel", "triton")
# On CPU, up to this many tokens the loop's few steps beat the parallel form's set-up (measured on a
# 2-core Xeon at 64 and 512 channels: the loop wins at 8 tokens, loses at 16).
RECURRENT_MAX_LENGTH = 12


class WKVState(NamedTuple):
    """Σ_{i≤T} e^{−(T−i)w + k_i − shift}·(v_i, 1) after token T: (num, den), and the running max ``shift``.
    Each is (batch, channels) in the compute dtype (float32, or float64 for float64 inputs)."""
    num: torch.Tensor
    den: torch.Tensor
    shift: torch.Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; every other float type is computed in fp32, as the official kernel does."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def init_wkv_state(batch: int, channels: int, *, device=None, dtype=torch.float32) -> WKVState:
    """The empty state: no tokens seen (sums 0, shift = NEG_INF)."""
    dtype = compute_dtype(dtype)
    zeros = torch.zeros(batch, channels, device=device, dtype=dtype)
    return WKVState(zeros, zeros.clone(), torch.full_like(zeros, NEG_INF))


# --------------------------------------------------------------------------- checks
def check_wkv_inputs(w, u, k, v, state=None) -> None:
    """Shapes, dtypes, devices and w > 0, with messages that name the argument."""
    check_tensor(k, "k", 3, "(batch, length, channels)")
    check_tensor(v, "v", 3, "(batch, length, channels)")
    if v.shape != k.shape:
        raise ValueError(f"v must have the shape of k (batch, length, channels) = {tuple(k.shape)}, "
                         f"got {tuple(v.shape)}")
    C = k.shape[-1]
    for name, p in (("w", w), ("u", u)):
        check_tensor(p, name, 1, f"(channels={C},)")
        if p.shape[0] != C:
            raise ValueError(f"{name} must have shape (channels={C},) to match k's last dimension, "
                             f"got {tuple(p.shape)}")
    check_same([k, v], ["k", "v"])
    for name, p in (("w", w), ("u", u)):
        if p.device != k.device:
            raise TypeError(f"{name} is on {p.device} but k is on {k.device}; all inputs must share a device")
    if not bool(torch.isfinite(w).all()) or not bool((w > 0).all()):
        bad = w[~(torch.isfinite(w) & (w > 0))][:3].tolist()
        raise ValueError(f"w must be finite and > 0 (the per-channel decay rate; checkpoints store "
                         f"time_decay with w = exp(time_decay)), got values such as {bad}")
    if not bool(torch.isfinite(u).all()):
        raise ValueError("u (the bonus for the current token) must be finite")
    for name, x in (("k", k), ("v", v)):
        # One reduction: a finite sum means every entry is finite; otherwise the exact check decides
        # (an overflowing sum of finite entries passes it) and names the first bad entry. Inside
        # ``postlib.allow_nonfinite()`` it lets the input through: the arithmetic gives what it gives.
        if not math.isfinite(float(x.detach().sum())):
            check_finite(x, name, "the chunked forms would carry a NaN or inf back to earlier tokens of its chunk")
    if state is not None:
        if not isinstance(state, tuple) or len(state) != 3:
            raise TypeError("state must be a WKVState(num, den, shift), e.g. from init_wkv_state or return_state=True")
        for name, s in zip(WKVState._fields, state):
            check_tensor(s, f"state.{name}", 2, f"(batch={k.shape[0]}, channels={C})")
            if s.shape != (k.shape[0], C):
                raise ValueError(f"state.{name} must have shape (batch, channels) = {(k.shape[0], C)}, "
                                 f"got {tuple(s.shape)}")
            if s.device != k.device:
                raise TypeError(f"state.{name} is on {s.device} but k is on {k.device}")


# --------------------------------------------------------------------------- the definition
def wkv_log_weights(w, u, k) -> torch.Tensor:
    """Log of the (unnormalised) weight output t gives to token i: (batch, channels, L_t, L_i).

    log α_{t,i} = k_i − (t−1−i)·w for i < t, u + k_t for i = t, −inf for i > t (causal).
    """
    L = k.shape[1]
    t = torch.arange(L, device=k.device)
    gap = (t[:, None] - 1 - t[None, :]).to(k.dtype)                      # t − 1 − i
    kk = k.transpose(1, 2)[:, :, None, :]                                # (B, C, 1, L_i)
    logits = kk - gap * w[None, :, None, None]
    diag = (u[None, :, None] + k.transpose(1, 2))                        # (B, C, L)
    logits = torch.where(torch.eye(L, dtype=torch.bool, device=k.device), diag[..., None, :], logits)
    return logits.masked_fill(t[None, :] > t[:, None], float("-inf"))


def wkv_weights(w, u, k) -> torch.Tensor:
    """The normalised weights each output gives to the past: (batch, channels, L, L), rows sum to 1.

    wkv_t = Σ_i weights[..., t, i] · v_i — the attention matrix WKV never builds (chapter figures)."""
    check_tensor(k, "k", 3, "(batch, length, channels)")
    return torch.softmax(wkv_log_weights(w, u, k), dim=-1)


def wkv_definition(w, u, k, v) -> torch.Tensor:
    """The equation summed directly, O(L²) per channel: the definition every form is tested against."""
    check_wkv_inputs(w, u, k, v)
    return torch.einsum("bcti,bic->btc", wkv_weights(w, u, k), v)


# --------------------------------------------------------------------------- the RNN loop
def wkv_step(w, u, k_t, v_t, state: WKVState):
    """One token of the RNN (the official kernel's loop body). k_t, v_t: (batch, channels).

    Output: the past sums (no further decay) plus the current token with its bonus u.
    Update: decay the past by e^{−w}, add the current token without bonus.
    """
    num, den, shift = state
    p = torch.maximum(shift, u + k_t)
    e_past, e_now = torch.exp(shift - p), torch.exp(u + k_t - p)
    out = (e_past * num + e_now * v_t) / (e_past * den + e_now)
    p = torch.maximum(shift - w, k_t)
    e_past, e_now = torch.exp(shift - w - p), torch.exp(k_t - p)
    return out, WKVState(e_past * num + e_now * v_t, e_past * den + e_now, p)


def _wkv_recurrent(w, u, k, v, state):
    outs = []
    for t in range(k.shape[1]):
        out, state = wkv_step(w, u, k[:, t], v[:, t], state)
        outs.append(out)
    return torch.stack(outs, dim=1), state


# --------------------------------------------------------------------------- the exact scan (wkv_scan.py)
def _wkv_scan(w, u, k, v, state):
    """``wkv_scan.wkv_scan`` with the state as a ``WKVState``: the exact fallback of the parallel form."""
    out, last = wkv_scan(w, u, k, v, state)
    return out, WKVState(*last)


# Exponent gaps each dtype represents with full precision: a term e^{−gap} below the largest one
# is kept exactly for gap < RANGE, and anything smaller than e^{−RANGE} is below rounding anyway.
EXP_RANGE = {torch.float32: 60.0, torch.float64: 600.0}
MAX_CHUNK = 64
MIN_FP32_CHUNK = 16


def chunk_plan(w, u, k, dtype) -> tuple[int, torch.dtype] | None:
    """(chunk length T, dtype) for ``_wkv_chunked``, or None when only the scan is exact.

    Inside a chunk every term is taken relative to the chunk's largest exponent; a row's own largest
    term can lie below it by at most spread(k) + T·max(w) + max(0, −min(u)) (see ``_wkv_chunked``).
    T is the longest chunk that keeps that gap inside ``EXP_RANGE``: in fp32 when T ≥ 16 allows it
    (small decays), else in fp64 (e.g. T = 29 for the paper's decays, w ≤ e³).
    """
    lo, hi = torch.aminmax(k.detach())
    spread = float(hi - lo) + max(0.0, -float(u.detach().min()))
    w_max = float(w.detach().max())
    for ct in ((torch.float32, torch.float64) if dtype != torch.float64 else (torch.float64,)):
        T = int(min(MAX_CHUNK, (EXP_RANGE[ct] - spread) // w_max)) if EXP_RANGE[ct] > spread else 0
        if T >= (MIN_FP32_CHUNK if ct == torch.float32 else 1):
            return T, ct
    return None


def _wkv_chunked(w, u, k, v, state, chunk: int, dtype, out_dtype=None, out=None, scratch=None):
    """Chunks of T tokens in closed form, the state carried from each chunk to the next (``_carry``).

    Inside a chunk (local index j), with z_j = k_j + j·w and m = max_j z_j, the past of row r is
    Σ_{j<r} e^{k_j − (r−1−j)w} v_j = e^{m − (r−1)w} Σ_{j<r} e^{z_j − m} v_j: one exp per token and a
    cumulative sum. The carried state (sums e^{P}(A, B) as of the token before the chunk) reaches row
    r decayed by e^{−rw}, and the bonus term is e^{u + k_r} = e^{u + m − rw}·e^{z_r − m}. The common
    factor e^{−rw} cancels in the ratio, leaving three per-chunk weights (α, β, γ) = e^{(P, m + w, u + m) − R}
    with R their maximum:

        wkv_r = (α A + β Σ_{j<r} E_j v_j + γ E_r v_r) / (α B + β Σ_{j<r} E_j + γ E_r),   E_j = e^{z_j − m}.

    Numerator and denominator share every step, so they are stacked (index 0: E, 1: E·v) and each
    pass does both. ``chunk_plan`` picks T so that no row's terms fall out of the dtype's range.
    Equals the loop (tests). Returns the output in ``out_dtype`` (default: k's), the final state in ``dtype``.
    Without autograd, the output may be written into ``out`` (B, L, C) and the work buffers taken from
    ``scratch`` (a dict reused across calls, see ``_buffer``).
    """
    out_dtype = out_dtype or k.dtype
    B, L, C = k.shape
    T = chunk
    nc = -(-L // T)
    full, rest = divmod(L, T)
    inplace = _in_place(w, u, k, v, *state)
    w, u = w.to(dtype), u.to(dtype)

    # X[j, :, b, c] = row j of chunk c, (key, value) → (E, E·v): one copy per input, row j of every
    # chunk one contiguous slab. A short last chunk is padded with key NEG_INF: weight 0, no effect.
    X = _buffer(scratch if inplace else None, "X", (T, 2, B, nc, C), k.device, dtype)
    for i, (x, fill) in enumerate(((k, NEG_INF), (v, 0.0))):
        X[:, i, :, :full] = x[:, :full * T].view(B, full, T, C).permute(2, 0, 1, 3)
        if rest:
            X[:rest, i, :, full] = x[:, full * T:].transpose(0, 1)
            X[rest:, i, :, full] = fill
    jw = torch.arange(T, device=k.device, dtype=dtype)[:, None, None, None] * w         # j·w
    if inplace:
        z = X[:, 0].add_(jw)        # (a mixed fp32 + fp64 add straight into X is slower than copy, add)
        m = z.amax(0)                                                 # (B, nc, C)
        X[:, 1].mul_(z.sub_(m).exp_())                                # X = (E, E·v)
    else:
        z = X[:, 0] + jw
        m = z.amax(0)
        E = torch.exp(z - m)
        X = torch.stack([E, E * X[:, 1]], 1)
    past = _exclusive_row_sums(X, inplace, scratch)                   # Σ_{j<r} (E, E·v)_j
    P, S = _carry(state, m - (T - 1) * w, past[-1] + X[-1], T * w, inplace)   # entering each chunk, and after
    last = WKVState(S[1, :, -1], S[0, :, -1], P[:, -1] + (nc * T - L) * w)     # undo the padding's decay
    P, S = P[:, :-1], S[:, :, :-1]
    R = torch.maximum(torch.maximum(P, m + w), u + m)
    alpha, beta, gamma = torch.exp(P - R), torch.exp(m + w - R), torch.exp(u + m - R)
    if not inplace:
        Y = torch.addcmul(alpha * S, beta, past).addcmul_(gamma, X)
        result = (Y[:, 1] / Y[:, 0]).permute(1, 2, 0, 3).to(out_dtype)
        return result.reshape(B, nc * T, C)[:, :L], last
    Y = past.mul_(beta).add_(alpha * S).addcmul_(gamma, X)
    out = torch.empty(B, L, C, device=k.device, dtype=out_dtype) if out is None else out
    # The ratio goes straight into (B, L, C) order and the output dtype: no extra pass.
    torch.div(Y[:, 1, :, :full], Y[:, 0, :, :full], out=out[:, :full * T].view(B, full, T, C).permute(2, 0, 1, 3))
    if rest:
        torch.div(Y[:rest, 1, :, full], Y[:rest, 0, :, full], out=out[:, full * T:].transpose(0, 1))
    return out, last


def _in_place(*tensors) -> bool:
    """Without autograd, intermediates are overwritten in place and buffers reused: on a CPU, fresh
    buffers cost page faults comparable to the arithmetic itself."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def _buffer(scratch: dict | None, name: str, shape, device, dtype) -> torch.Tensor:
    """An uninitialised tensor of ``shape``; with a ``scratch`` dict, carved from one kept there under
    ``name`` (grown when too small), so a loop over blocks allocates each buffer once."""
    if scratch is None:
        return torch.empty(shape, device=device, dtype=dtype)
    n = math.prod(shape)
    flat = scratch.get(name)
    if flat is None or flat.numel() < n or flat.dtype != dtype or flat.device != torch.device(device):
        flat = scratch[name] = torch.empty(n, device=device, dtype=dtype)
    return flat[:n].view(shape)


def _carry(state, p, s, decay, inplace: bool):
    """The state entering every chunk: ``merge`` applied chunk after chunk, from ``state``.

    p (B, nc, C): each chunk's exponent as of its last token; s (2, B, nc, C): its sums (ΣE, ΣE·v);
    decay (C,): a chunk's total decay T·w. Returns P (B, nc + 1, C) and S (2, B, nc + 1, C), index c the
    state before chunk c (index nc: after the last). The exponents need no loop: unrolled, merge's
    max is P_n = max(P_0, max_{c<n} p_c + (c+1)·decay) − n·decay, a running maximum (cummax). Any P
    would do as long as every step uses the same one (the represented sums are e^{P}·S); this one keeps
    each exp() at ≤ 0. What stays sequential is two multiply-adds per chunk on (2, B, C).
    """
    B, nc, C = p.shape
    n = torch.arange(nc + 1, device=p.device, dtype=p.dtype)[:, None] * decay          # (nc + 1, C)
    shift0 = state.shift.to(p.dtype)[:, None]
    P = torch.cummax(torch.cat([shift0, p + n[1:]], 1), 1).values - n                  # (B, nc + 1, C)
    keep = torch.exp(P[:, :-1] - decay - P[:, 1:])                   # weight of the carried sums
    add = torch.exp(p - P[:, 1:])                                     # weight of chunk c's own sums
    start = torch.stack([state.den, state.num]).to(p.dtype)           # (2, B, C)
    # unbind: every per-chunk view made in one call (indexing inside the loop costs as much as the math)
    steps = zip(keep.unbind(1), add.unbind(1), s.unbind(2))
    if inplace:
        S = torch.empty(2, B, nc + 1, C, device=p.device, dtype=p.dtype)
        S[:, :, 0] = start
        for before, after, (keep_c, add_c, s_c) in zip(S.unbind(2), S.unbind(2)[1:], steps):
            torch.mul(before, keep_c, out=after).addcmul_(s_c, add_c)
        return P, S
    out = [start]
    for keep_c, add_c, s_c in steps:
        out.append(out[-1] * keep_c + s_c * add_c)
    return P, torch.stack(out, 2)


def _exclusive_row_sums(x, inplace: bool, scratch: dict | None = None):
    """Σ_{j<r} x[j] for every row r of (T, ...): T − 1 contiguous additions (torch.cumsum is ~10x slower
    here on a CPU; and a shift of the inclusive sum, never a subtraction, so nothing cancels)."""
    if inplace:
        out = _buffer(scratch, "row sums", x.shape, x.device, x.dtype)
        out[0].zero_()
        for j in range(1, x.shape[0]):
            torch.add(out[j - 1], x[j - 1], out=out[j])
        return out
    acc = [torch.zeros_like(x[0])]
    for j in range(1, x.shape[0]):
        acc.append(acc[-1] + x[j - 1])
    return torch.stack(acc)


# The chunked form streams through the sequence in blocks of about this many (batch × token × channel)
# entries, carrying the state between blocks: its ~15 passes then stay in cache (at (1, 4096, 512) on a
# 2-core EPYC, 2^19 beat 2^17, 2^18, 2^20 and 2^21), and its extra memory is O(block), not O(L).
BLOCK_ELEMENTS = 1 << 19


def _block_count(batch: int, length: int, channels: int) -> int:
    """How many equal blocks the sequence is cut into: about BLOCK_ELEMENTS entries each."""
    return max(1, round(batch * length * channels / BLOCK_ELEMENTS))


def _wkv_parallel(w, u, k, v, state):
    plan = chunk_plan(w, u, k, k.dtype)
    if plan is None:
        return _wkv_scan(w, u, k, v, state)
    T, dtype = plan
    B, L, C = k.shape
    block = -(-L // (_block_count(B, L, C) * T)) * T                  # a whole number of chunks
    if _in_place(w, u, k, v, *state):      # each block writes its slice of one output, buffers reused
        out, scratch = torch.empty(B, L, C, device=k.device, dtype=k.dtype), {}
        for start in range(0, L, block):
            piece = slice(start, start + block)
            state = _wkv_chunked(w, u, k[:, piece], v[:, piece], state, T, dtype, out=out[:, piece],
                                 scratch=scratch)[1]
        return out, WKVState(*(s.to(k.dtype) for s in state))
    outs = []
    for kb, vb in zip(torch.split(k, block, dim=1), torch.split(v, block, dim=1)):   # split: a linear backward
        out, state = _wkv_chunked(w, u, kb, vb, state, T, dtype)
        outs.append(out)
    return torch.cat(outs, 1) if len(outs) > 1 else outs[0], WKVState(*(s.to(k.dtype) for s in state))


# --------------------------------------------------------------------------- dispatch
def pick_backend(k: torch.Tensor) -> str:
    """The ``"auto"`` rule: Triton for CUDA tensors; on CPU the loop for a few tokens, else the scan."""
    if k.is_cuda:
        from ..kernels import triton_available
        return "triton" if triton_available() else "parallel"
    return "recurrent" if k.shape[1] <= RECURRENT_MAX_LENGTH else "parallel"


def wkv_memory_estimate(batch: int, length: int, channels: int, dtype=torch.float32, backend: str = "auto",
                        grad: bool = False) -> int:
    """Upper bound on the bytes one CPU ``wkv`` call allocates (its output included), as
    ``postlib.bench.peak_memory`` measures it; ``grad``: with autograd on and a backward pass.

    Per (batch × token × channel) entry, measured at 13 … 4096 tokens (tests/recurrent/test_wkv.py):
    the loop keeps its outputs (×2 entries; ×14 when autograd saves each step); the chunked form
    holds ~5 fp64 arrays of one block (the stacked (E, E·v) and their row sums, the output; ≤ 48 B per
    entry, the block padded by up to a chunk; ~112 B with autograd, which keeps every block); the exact
    scan fallback ~16 compute-dtype entries (~28 with autograd). A Triton call holds its output and state (its backward runs the parallel form).
    """
    check_choice(backend, "backend", BACKENDS)
    item = compute_dtype(dtype).itemsize
    n = batch * length * channels
    small = 8 * batch * channels * item                            # states and per-step temporaries
    if backend == "auto":
        backend = "recurrent" if length <= RECURRENT_MAX_LENGTH else "parallel"
    if backend == "recurrent":
        return (14 if grad else 2) * n * item + small
    if backend == "triton" and not grad:
        return n * item + small
    block = -(-length // _block_count(batch, length, channels))     # + under a chunk, in ``padded``
    padded = batch * ((length if grad else min(length, block)) + MAX_CHUNK) * channels
    chunked = (112 if grad else 48) * padded
    scan = (28 if grad else 16) * n * item
    return max(chunked, scan) + n * item + small


def wkv(w, u, k, v, *, backend: str = "auto", state: WKVState | None = None, return_state: bool = False):
    """RWKV-4's WKV operator over a sequence.

    Args:
        w: (channels,) decay rate, > 0 (from a checkpoint: w = exp(time_decay)).
        u: (channels,) bonus of the current token (``time_first``).
        k, v: (batch, length, channels).
        backend: ``"recurrent"`` (the loop), ``"parallel"`` (associative scan), ``"triton"``, ``"auto"``.
        state: a ``WKVState`` to continue from (streaming), else the empty state.
        return_state: also return the state after the last token.
    Returns (batch, length, channels) in k's dtype (computed in fp32, or fp64 for fp64 inputs)
    [, the final ``WKVState``]. Every backend equals ``wkv_definition`` (tests/recurrent/test_wkv.py).
    Non-finite k or v are refused with a ValueError (a chunk's shared maximum would carry them backwards).
    """
    check_choice(backend, "backend", BACKENDS)
    check_wkv_inputs(w, u, k, v, state)
    B, L, C = k.shape
    ct = compute_dtype(k.dtype)
    if state is None:
        state = init_wkv_state(B, C, device=k.device, dtype=ct)
    state = WKVState(*(s.to(ct) for s in state))
    if B == 0 or L == 0:
        out = k.new_zeros(B, L, C)
        return (out, state) if return_state else out
    if backend == "auto":
        backend = pick_backend(k)
    w32, u32, k32, v32 = (x.to(ct) for x in (w, u, k, v))
    if backend == "triton":
        from ..kernels.wkv import wkv_triton
        out, last = wkv_triton(w32, u32, k32, v32, state)
    elif backend == "recurrent":
        out, last = _wkv_recurrent(w32, u32, k32, v32, state)
    else:
        out, last = _wkv_parallel(w32, u32, k32, v32, state)
    out = out.to(k.dtype)
    return (out, last) if return_state else out
