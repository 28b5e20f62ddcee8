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
                   token and a running sum, ``_wkv_chunked``), the chunks' summaries carried by an
                   associative scan (``scan_segments``: the state after a segment, (p, a, b) with the
                   segment's total decay, composes associatively — ``combine``). ``chunk_plan`` picks
                   T and the dtype so no term leaves the float range; when no chunk length can
                   (keys spread over more than ~600), the whole sequence goes through the scan
                   (``_wkv_scan``), which is exact for any inputs;
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

BACKENDS = ("auto", "recurrent", "parallel", "triton")
# The official kernel's "minus infinity": finite, so (−1e38) − (−1e38) = 0, never NaN.
NEG_INF = -1e38
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


# --------------------------------------------------------------------------- the parallel scan
def _identity_like(x):
    one = x[..., :1]
    return torch.full_like(one, NEG_INF), torch.zeros_like(one), torch.zeros_like(one), torch.zeros_like(one)


def merge(p1, a1, b1, p2, a2, b2, decay2):
    """The sums of an earlier segment (p₁, a₁, b₁), decayed over a later one of total decay ``decay2``
    (= its length × w), plus the later segment's sums (p₂, a₂, b₂), under a common maximum exponent:

        p = max(p₁ − decay₂, p₂),   a = e^{p₁−decay₂−p} a₁ + e^{p₂−p} a₂,   b likewise.
    """
    q = p1 - decay2
    p = torch.maximum(q, p2)
    e1, e2 = torch.exp(q - p), torch.exp(p2 - p)
    return p, e1 * a1 + e2 * a2, e1 * b1 + e2 * b2


def combine(earlier, later):
    """``merge`` on segment summaries (p, a, b, decay); the decays add. Associative, with identity
    (NEG_INF, 0, 0, 0), so a scan may bracket it any way it likes."""
    return (*merge(*earlier[:3], *later), earlier[3] + later[3])


def _interleave(even, odd, length):
    return torch.stack([even, odd], -1).flatten(-2)[..., :length]


def scan_segments(p, a, b, d):
    """Inclusive scan of ``combine`` along the last dim (time innermost): the summary of tokens 0..t.

    Level by level: combine neighbours (2j, 2j+1), solve the half-length problem (its answers are the
    odd positions), then even position 2j = merge(answer at 2j−1, element 2j). O(L) work and memory,
    O(log L) depth. ``d`` may broadcast over the batch (it is the same for every sequence).
    """
    L = p.shape[-1]
    if L == 1:
        return p, a, b
    d = d.expand_as(p)
    if L % 2:                                    # pad with the identity element
        p, a, b, d = (torch.cat([x, e], -1) for x, e in zip((p, a, b, d), _identity_like(p)))
    pe, ae, be, de = (x[..., 0::2] for x in (p, a, b, d))
    po, ao, bo, do = (x[..., 1::2] for x in (p, a, b, d))
    P, A, B = scan_segments(*combine((pe, ae, be, de), (po, ao, bo, do)))   # answers at 2j+1
    Pe, Ae, Be = merge(P[..., :-1], A[..., :-1], B[..., :-1], pe[..., 1:], ae[..., 1:], be[..., 1:], de[..., 1:])
    return (_interleave(torch.cat([pe[..., :1], Pe], -1), P, L),
            _interleave(torch.cat([ae[..., :1], Ae], -1), A, L),
            _interleave(torch.cat([be[..., :1], Be], -1), B, L))


def _wkv_scan(w, u, k, v, state):
    """Prefix states S_{t−1} by ``scan_segments`` over [initial state, token 0, ..., token L−1],
    then each output adds its own token with the bonus. Exact for any range of keys and decays
    (every exp() is of a number ≤ 0); the fallback of ``_wkv_chunked``. Equals the loop (tests)."""
    B, L, C = k.shape
    kt, vt = k.transpose(1, 2), v.transpose(1, 2)                     # (B, C, L): time innermost
    p = torch.cat([state.shift[..., None], kt], -1)                   # element 0 is the carried state
    a = torch.cat([state.num[..., None], vt], -1)
    b = torch.cat([state.den[..., None], torch.ones_like(kt)], -1)
    d = torch.cat([torch.zeros_like(w[:, None]), w[:, None].expand(C, L)], -1)[None]   # its decay is 0
    P, A, Bs = scan_segments(p, a, b, d)                              # S_{−1}, S_0, ..., S_{L−1}
    last = WKVState(A[..., -1], Bs[..., -1], P[..., -1])
    P, A, Bs = P[..., :-1], A[..., :-1], Bs[..., :-1]                 # S_{t−1} for each output t
    bonus = u[:, None] + kt
    q = torch.maximum(P, bonus)
    e_past, e_now = torch.exp(P - q), torch.exp(bonus - q)
    out = (e_past * A + e_now * vt) / (e_past * Bs + e_now)
    return out.transpose(1, 2), last


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


def _wkv_chunked(w, u, k, v, state, chunk: int, dtype, out_dtype=None):
    """Chunks of T tokens in closed form, chunk-final states carried by ``scan_segments``.

    Inside a chunk (local index j), with z_j = k_j + j·w and m = max_j z_j, the past of row r is
    Σ_{j<r} e^{k_j − (r−1−j)w} v_j = e^{m − (r−1)w} Σ_{j<r} e^{z_j − m} v_j: one exp per token and a
    cumulative sum. The carried state (sums e^{P}(A, B) as of the token before the chunk) reaches row
    r decayed by e^{−rw}, and the bonus term is e^{u + k_r} = e^{u + m − rw}·e^{z_r − m}. The common
    factor e^{−rw} cancels in the ratio, leaving three per-chunk weights (α, β, γ) = e^{(P, m + w, u + m) − R}
    with R their maximum:

        wkv_r = (α A + β Σ_{j<r} E_j v_j + γ E_r v_r) / (α B + β Σ_{j<r} E_j + γ E_r),   E_j = e^{z_j − m}.

    ``chunk_plan`` picks T so that no row's terms fall out of the dtype's range. Equals the loop (tests).
    Returns the output in ``out_dtype`` (default: k's) and the final state in ``dtype``.
    """
    out_dtype = out_dtype or k.dtype
    B, L, C = k.shape
    T = chunk
    nc = -(-L // T)
    pad = nc * T - L
    # Without autograd, intermediates are overwritten in place: on a CPU, fresh buffers cost page
    # faults comparable to the arithmetic itself.
    inplace = not (torch.is_grad_enabled() and any(t.requires_grad for t in (w, u, k, v, *state)))
    w, u = w.to(dtype), u.to(dtype)

    def rows(x, fill):
        """(B, L, C) → (T, B, nc, C) in ``dtype``: row j of every chunk is one contiguous slab (one copy)."""
        if pad:     # padded tokens get key NEG_INF: weight 0, so they change nothing
            x = torch.nn.functional.pad(x, (0, 0, 0, pad), value=fill)
        out = torch.empty(T, B, nc, C, device=x.device, dtype=dtype)     # always a copy: it is written in place
        return out.copy_(x.view(B, nc, T, C).permute(2, 0, 1, 3))

    kr, vr = rows(k, NEG_INF), rows(v, 0.0)
    jw = torch.arange(T, device=k.device, dtype=dtype)[:, None, None, None] * w         # j·w
    z = kr.add_(jw) if inplace else kr + jw
    m = z.amax(0)                                                     # (B, nc, C)
    E = z.sub_(m).exp_() if inplace else torch.exp_(z - m)
    Ev = vr.mul_(E) if inplace else E * vr
    past_ev, past_e = _exclusive_row_sums(Ev, inplace), _exclusive_row_sums(E, inplace)
    total_ev, total_e = past_ev[-1] + Ev[-1], past_e[-1] + E[-1]     # each chunk's sums, (B, nc, C)
    # Chunk summaries as of each chunk's last token, carried across chunks (time innermost for the scan).
    P0, A0, B0 = (s.to(dtype)[:, :, None] for s in (state.shift, state.num, state.den))
    p_el = torch.cat([P0, (m - (T - 1) * w).transpose(1, 2)], -1)
    a_el = torch.cat([A0, total_ev.transpose(1, 2)], -1)
    b_el = torch.cat([B0, total_e.transpose(1, 2)], -1)
    d_el = torch.cat([torch.zeros_like(w[:, None]), (T * w)[:, None].expand(C, nc)], -1)[None]
    P, A, Bs = (x.transpose(1, 2) for x in scan_segments(p_el, a_el, b_el, d_el))      # (B, nc + 1, C)
    last = WKVState(A[:, -1], Bs[:, -1], P[:, -1] + pad * w)         # undo the padding's decay
    P, A, Bs = P[:, :-1], A[:, :-1], Bs[:, :-1]                       # state entering each chunk
    R = torch.maximum(torch.maximum(P, m + w), u + m)
    alpha, beta, gamma = torch.exp(P - R), torch.exp(m + w - R), torch.exp(u + m - R)
    if inplace:
        num = past_ev.mul_(beta).add_(alpha * A).addcmul_(gamma, Ev)
        out = num.div_(past_e.mul_(beta).add_(alpha * Bs).addcmul_(gamma, E))
    else:
        num = torch.addcmul(alpha * A, beta, past_ev).addcmul_(gamma, Ev)
        out = num / torch.addcmul(alpha * Bs, beta, past_e).addcmul_(gamma, E)
    result = torch.empty(B, nc, T, C, device=k.device, dtype=out_dtype)
    result.copy_(out.permute(1, 2, 0, 3))                             # back to (B, L, C), converting once
    return result.view(B, nc * T, C)[:, :L], last


def _exclusive_row_sums(x, inplace: bool):
    """Σ_{j<r} x[j] for every row r of (T, ...): T − 1 contiguous additions (torch.cumsum is ~10x slower
    here on a CPU; and a shift of the inclusive sum, never a subtraction, so nothing cancels)."""
    if inplace:
        out = torch.empty_like(x)
        out[0].zero_()
        for j in range(1, x.shape[0]):
            torch.add(out[j - 1], x[j - 1], out=out[j])
        return out
    acc = [torch.zeros_like(x[0])]
    for j in range(1, x.shape[0]):
        acc.append(acc[-1] + x[j - 1])
    return torch.stack(acc)


# The chunked form streams through the sequence in blocks of about this many (token × channel) entries,
# carrying the state between blocks: its ~20 passes then stay in cache (about 2x faster at (1, 4096, 512)
# on a 2-core Xeon than one pass over the whole sequence; 2^18 and 2^20 were slower), and its extra
# memory is O(block), not O(L).
BLOCK_ELEMENTS = 1 << 19


def _wkv_parallel(w, u, k, v, state):
    plan = chunk_plan(w, u, k, k.dtype)
    if plan is None:
        return _wkv_scan(w, u, k, v, state)
    T, dtype = plan
    B, L, C = k.shape
    block = max(T, BLOCK_ELEMENTS // max(B * C, 1) // T * T)
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
    holds ~6 fp64 arrays of one block (≤ 48 B per entry, the block padded by up to a chunk; ~112 B with
    autograd, which keeps every block); the exact scan fallback ~16 compute-dtype entries (~28 with
    autograd). A Triton call holds its output and state (its backward runs the parallel form).
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
    block = max(MAX_CHUNK, BLOCK_ELEMENTS // max(batch * channels, 1))
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
