"""Which tiles of the attention matrix a block-sparse form must compute, found without the L × L mask.

Cut the (L × L) matrix into tiles of ``tile_q`` rows and ``tile_k`` columns. For tile
(I, J) with rows [r0, r1] and columns [c0, c1] (clipped to the sequence), each
component of a :class:`~postlib.sparse.masks.Pattern` answers "does the tile hold an
allowed entry?" (``any``) and "is every entry allowed?" (``full``) from the interval
ends alone:

* band |i − j| ≤ h: i − j takes every integer in [r0 − c1, r1 − c0], so the tile meets
  the band iff that interval meets [−h, h] ([0, h] when causal), and lies inside it
  iff the interval is contained;
* global tokens: a prefix count of the global flags says whether a global row lies in
  [r0, r1] (when causal: in [max(r0, c0), r1]) or a global column in [c0, c1] (causal:
  [c0, min(c1, r1)]);
* BigBird's coarse blocks: a 2-D prefix sum over the coarse mask counts the allowed
  coarse blocks under the tile;
* a dilated pair (w, r, o): the segments in which row tile I has a selected position
  form an interval [first_I, last_I] (every segment strictly inside a tile is whole and
  has position o); tile (I, J) meets the pair iff the row and column intervals meet.

All of it costs O(L) plus O(number of tiles); ``tests/sparse/test_masks.py`` checks
``any`` and ``full`` against the dense mask for every kind.
"""
from __future__ import annotations

import torch

from .._checks import check_positive_int


def _tile_bounds(length: int, tile: int):
    """First and last index of every tile (the last tile clipped to the sequence)."""
    n = -(-length // tile)
    start = torch.arange(n) * tile
    return start, torch.clamp(start + tile - 1, max=length - 1)


def _band(h, r0, r1, c0, c1, causal):
    lo = 0 if causal else -h
    diff_min, diff_max = r0 - c1, r1 - c0
    return (diff_max >= lo) & (diff_min <= h), (diff_min >= lo) & (diff_max <= h)


def _count(prefix, a, b):
    """Number of flagged positions in [a, b] (0 where a > b); ``prefix[x]`` = count below x."""
    return torch.where(a <= b, prefix[(b + 1).clamp(min=0)] - prefix[a.clamp(min=0, max=prefix.numel() - 1)],
                       torch.zeros((), dtype=prefix.dtype))


def _globals(flags, r0, r1, c0, c1, causal):
    prefix = torch.cat([torch.zeros(1, dtype=torch.long), flags.long().cumsum(0)])
    if causal:
        rows_any = _count(prefix, torch.maximum(r0, c0), r1) > 0
        cols_any = _count(prefix, c0, torch.minimum(c1, r1)) > 0
    else:
        rows_any, cols_any = _count(prefix, r0, r1) > 0, _count(prefix, c0, c1) > 0
    rows_full = _count(prefix, r0, r1) == (r1 - r0 + 1)
    cols_full = _count(prefix, c0, c1) == (c1 - c0 + 1)
    return rows_any | cols_any, rows_full | cols_full


def _coarse(coarse, b, r0, r1, c0, c1):
    n = coarse.shape[0]
    s = torch.zeros(n + 1, n + 1, dtype=torch.long)
    s[1:, 1:] = coarse.long().cumsum(0).cumsum(1)
    a0, a1, k0, k1 = r0 // b, r1 // b, c0 // b, c1 // b
    count = s[a1 + 1, k1 + 1] - s[a0, k1 + 1] - s[a1 + 1, k0] + s[a0, k0]
    return count > 0, count == (a1 - a0 + 1) * (k1 - k0 + 1)


def _selected_segments(length, w, r, o, start, end):
    """Per tile: (first, last) segment holding a selected position in [start, end]; first > last if none."""
    def first_at_or_after(a):
        seg, u = a // w, a % w
        cand = seg * w + o + torch.clamp(u - o + r - 1, min=0) // r * r
        return torch.where(cand - seg * w >= w, (seg + 1) * w + o, cand)

    def last_at_or_before(b):
        seg, u = b // w, b % w
        here = seg * w + o + (u - o) // r * r
        prev = (seg - 1) * w + o + (w - 1 - o) // r * r
        return torch.where(u >= o, here, prev)

    first, last = first_at_or_after(start), last_at_or_before(end)
    valid = (first <= end) & (first < length) & (last >= start) & (o < w)
    big = torch.full_like(start, 1 << 40)
    return torch.where(valid, first // w, big), torch.where(valid, last // w, -big)


def _dilated(length, pair, q_bounds, k_bounds, r0, r1, c0, c1):
    w, r, o = pair
    fq, lq = _selected_segments(length, w, r, o, *q_bounds)
    fk, lk = _selected_segments(length, w, r, o, *k_bounds)
    any_ = (fq[:, None] <= lk[None, :]) & (fk[None, :] <= lq[:, None])
    full = (r == 1) & (r0 // w == r1 // w) & (c0 // w == c1 // w) & (r0 // w == c0 // w)
    return any_, full & any_


def tile_layout(pattern, tile_q: int, tile_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(any, full)`` for ``pattern`` cut into (tile_q × tile_k) tiles; see the module docstring."""
    check_positive_int(tile_q, "tile_q")
    check_positive_int(tile_k, "tile_k")
    L = pattern.length
    q_bounds, k_bounds = _tile_bounds(L, tile_q), _tile_bounds(L, tile_k)
    r0, r1 = (t[:, None] for t in q_bounds)
    c0, c1 = (t[None, :] for t in k_bounds)
    shape = (r0.shape[0], c0.shape[1])
    any_ = torch.zeros(shape, dtype=torch.bool)
    full = torch.zeros(shape, dtype=torch.bool)
    parts = []
    if pattern.half_window is not None:
        parts.append(_band(pattern.half_window, r0, r1, c0, c1, pattern.causal))
    if pattern.global_flags is not None:
        parts.append(_globals(pattern.global_flags, r0, r1, c0, c1, pattern.causal))
    if pattern.coarse is not None:
        parts.append(_coarse(pattern.coarse, pattern.coarse_block, r0, r1, c0, c1))
    for pair in pattern.pairs:
        parts.append(_dilated(L, pair, q_bounds, k_bounds, r0, r1, c0, c1))
    for a, f in parts:
        any_ |= a
        full |= f
    if pattern.causal:
        any_ &= c0 <= r1
        full &= c1 <= r0
    full &= (c1 - c0 + 1) == tile_k   # a tile that runs past the last key needs the length mask
    return any_, full & any_


def layout_csr(any_: torch.Tensor, full: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compressed rows of a tile layout: ``(row_ptr, col_idx, full_end)`` as int32.

    Row I's tiles are ``col_idx[row_ptr[I]:row_ptr[I + 1]]``, the full tiles first
    (``row_ptr[I]:full_end[I]``, no element mask needed) and then the partial ones.
    """
    n_rows, n_cols = any_.shape
    rows, cols = any_.nonzero(as_tuple=True)
    partial = (~full[rows, cols]).long()
    order = torch.argsort(rows * (2 * n_cols) + partial * n_cols + cols)
    rows, cols, partial = rows[order], cols[order], partial[order]
    counts = torch.bincount(rows, minlength=n_rows)
    row_ptr = torch.zeros(n_rows + 1, dtype=torch.long)
    row_ptr[1:] = counts.cumsum(0)
    full_end = row_ptr[:-1] + torch.bincount(rows, weights=1.0 - partial.double(), minlength=n_rows).long()
    return row_ptr.int(), cols.int(), full_end.int()
