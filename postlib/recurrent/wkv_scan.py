"""WKV by an associative scan: exact for any keys and decays, O(L) memory, O(log L) depth.

The state after a segment of tokens is summarised by (p, a, b, d): its sums e^{p}·a (numerator) and
e^{p}·b (denominator) as of its last token, and its total decay d (its length × w). Two segments
compose by ``merge`` (decay the earlier sums over the later segment, add, re-shift to the larger
exponent), and that composition is associative (``combine``), so a scan may bracket it any way it
likes (``scan_segments``). ``postlib.recurrent.wkv`` uses it when its chunked closed form cannot keep
every term in floating-point range (keys spread over more than ~600), and for ``merge`` itself.
"""
from __future__ import annotations

import torch

# The official kernel's "minus infinity": finite, so (−1e38) − (−1e38) = 0, never NaN.
NEG_INF = -1e38


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


def wkv_scan(w, u, k, v, state):
    """Prefix states S_{t−1} by ``scan_segments`` over [initial state, token 0, ..., token L−1],
    then each output adds its own token with the bonus. Exact for any range of keys and decays
    (every exp() is of a number ≤ 0); the parallel form's fallback when no chunk length keeps every
    term in range. ``state`` is (num, den, shift); returns the output and the state after the last
    token. Equals the loop (tests/recurrent/test_wkv.py)."""
    B, L, C = k.shape
    kt, vt = k.transpose(1, 2), v.transpose(1, 2)                     # (B, C, L): time innermost
    p = torch.cat([state.shift[..., None], kt], -1)                   # element 0 is the carried state
    a = torch.cat([state.num[..., None], vt], -1)
    b = torch.cat([state.den[..., None], torch.ones_like(kt)], -1)
    d = torch.cat([torch.zeros_like(w[:, None]), w[:, None].expand(C, L)], -1)[None]   # its decay is 0
    P, A, Bs = scan_segments(p, a, b, d)                              # S_{−1}, S_0, ..., S_{L−1}
    last = (A[..., -1], Bs[..., -1], P[..., -1])                      # (num, den, shift) after the last token
    P, A, Bs = P[..., :-1], A[..., :-1], Bs[..., :-1]                 # S_{t−1} for each output t
    bonus = u[:, None] + kt
    q = torch.maximum(P, bonus)
    e_past, e_now = torch.exp(P - q), torch.exp(bonus - q)
    out = (e_past * A + e_now * vt) / (e_past * Bs + e_now)
    return out.transpose(1, 2), last
