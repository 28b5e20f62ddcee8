"""Sparse softmax attention: each query attends only the keys its pattern allows.

    O_i = Σ_{j ∈ N(i)} softmax_j(q_i·k_j / √d) v_j,   N(i) = { j : mask[i, j] }

with ``mask = attention_mask(kind, L, causal=causal, **params)`` and O_i = 0 when N(i)
is empty. Three forms, all equal (``tests/sparse/test_sparse_attention.py``, fp64):

* ``sparse_attention_reference`` — the definition: the dense L × L scores, masked.
  Only for tests and pictures.
* ``blocked_attention`` (``backend="torch"``) — cut the matrix into tiles, keep only
  the tiles that hold an allowed entry (``Pattern.tile_layout``), gather each query
  tile's key tiles and run an exact softmax over them. Memory O(L · keys per row),
  never O(L²); plain PyTorch, so autograd (and ``gradcheck``) go through it.
* ``backend="triton"`` — the same tiles in one fused kernel with FlashAttention's
  online softmax (``postlib.kernels.block_sparse``); its backward recomputes through
  ``blocked_attention``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .._checks import CAUSAL_NONFINITE, check_choice, check_finite, check_number, check_positive_int, check_qkv
from .masks import Pattern, attention_mask, make_pattern

BACKENDS = ("auto", "torch", "triton")
#: Scores held at once by one chunk of ``blocked_attention`` (bytes); bounds its working set.
CHUNK_BYTES = 8 * 2**20


def masked_attention(q, k, v, mask: torch.Tensor, scale: float | None = None, return_lse: bool = False):
    """Dense softmax attention restricted to ``mask`` (L_q, L_k) or (heads, L_q, L_k); empty rows give 0.

    Returns the output (and, with ``return_lse``, the log of each row's softmax denominator,
    −inf for an empty row) computed in at least fp32.
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    s = (q.to(work) @ k.to(work).transpose(-1, -2)) * scale
    s = s.masked_fill(~mask.to(q.device), float("-inf"))
    out, lse = _safe_softmax_times(s, v.to(work))
    out = out.to(q.dtype)
    return (out, lse) if return_lse else out


def _safe_softmax_times(s, v):
    """softmax(s) @ v over the last axis with rows of −inf giving 0 (not NaN), and the row log-sum-exp."""
    top = s.amax(-1, keepdim=True).detach()
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)   # the shift cancels; it is not a variable
    p = torch.exp(s - top)
    denom = p.sum(-1, keepdim=True)
    out = (p @ v) / torch.where(denom > 0, denom, torch.ones_like(denom))
    return out, (top + torch.log(denom)).squeeze(-1)


def _tile_chunks(counts: torch.Tensor, per_tile_bytes: int, budget: int):
    """Query tiles sorted by how many key tiles they need, cut into chunks of at most ``budget`` score bytes."""
    order = torch.argsort(counts, stable=True)
    sorted_counts = counts[order].tolist()
    start, n = 0, len(sorted_counts)
    while start < n:
        width = max(1, sorted_counts[start])
        size = max(1, budget // (per_tile_bytes * width))
        width = max(1, sorted_counts[min(start + size, n) - 1])
        size = max(1, min(size, budget // (per_tile_bytes * width)))
        yield order[start:start + size], max(1, sorted_counts[min(start + size, n) - 1])
        start += size


def blocked_attention(q, k, v, pattern: Pattern, *, tile: int = 64, scale: float | None = None,
                      return_lse: bool = False, chunk_bytes: int = CHUNK_BYTES):
    """Block-sparse attention in PyTorch, equal to ``masked_attention(q, k, v, pattern.dense())``
    (``tests/sparse/test_sparse_attention.py``, fp64, every kind, with ``gradcheck``).

    Only the (tile × tile) blocks with an allowed entry are computed. Query tiles are
    processed in chunks (sorted by their number of key tiles, so a few heavy global rows
    do not pad the others); in a chunk, each query tile gathers its key tiles, the
    element mask (``pattern.allowed``) is applied, and an exact softmax runs over them.
    Work and memory: O(L · tile · key tiles per row) — linear in L for a band.
    Computes in at least fp32, returns q's dtype; ``return_lse`` adds the (B, H, L)
    log-denominators (−inf where a row sees no key).
    """
    B, H, L, D = q.shape
    Dv = v.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    if B * H == 0:   # an empty batch (or no heads): nothing to attend
        out = q.new_zeros(B, H, L, Dv) + 0 * v.sum()
        return (out, q.new_zeros(B, H, L, dtype=work)) if return_lse else out
    any_, _ = pattern.tile_layout(tile)
    n = any_.shape[0]
    pad = n * tile - L
    qb, kb, vb = (F.pad(t.to(work), (0, 0, 0, pad)).view(B, H, n, tile, t.shape[-1]) for t in (q, k, v))
    pos = torch.arange(tile, dtype=torch.int32)
    per_tile_bytes = B * H * tile * tile * torch.empty((), dtype=work).element_size()
    outs, lses, order = [], [], []
    for rows, width in _tile_chunks(any_.sum(1), per_tile_bytes, chunk_bytes):
        flags = any_[rows]
        cols = torch.sort((~flags).to(torch.uint8), dim=1, stable=True).indices[:, :width]   # needed tiles first
        valid = flags.gather(1, cols)
        m = rows.numel()
        flat = cols.flatten()
        kg = kb.index_select(2, flat).view(B, H, m, width * tile, D)               # index_select: a fast gather
        vg = vb.index_select(2, flat).view(B, H, m, width * tile, Dv)
        s = (qb.index_select(2, rows) @ kg.transpose(-1, -2)) * scale             # (B, H, m, tile, width·tile)
        row_pos = (rows.to(torch.int32)[:, None] * tile + pos)[:, :, None]
        col_pos = (cols.to(torch.int32)[:, :, None] * tile + pos).reshape(m, 1, width * tile)
        keep = pattern.allowed(row_pos, col_pos) & valid.repeat_interleave(tile, dim=1)[:, None, :]
        out, lse = _safe_softmax_times(s.masked_fill(~keep, float("-inf")), vg)
        outs.append(out)
        lses.append(lse)
        order.append(rows)
    inverse = torch.argsort(torch.cat(order))
    out = torch.cat(outs, dim=2)[:, :, inverse].reshape(B, H, n * tile, Dv)[:, :, :L].to(q.dtype)
    if not return_lse:
        return out
    return out, torch.cat(lses, dim=2)[:, :, inverse].reshape(B, H, n * tile)[:, :, :L]


def _per_head_offsets(params: dict, heads: int):
    """A dilated pattern's ``offset`` may be one int or one per head (LongNet §2.3); returns a list or None."""
    offset = params.get("offset", 0)
    if isinstance(offset, int) or isinstance(offset, torch.Tensor) and offset.dim() == 0:
        return None
    if isinstance(offset, str):
        if offset != "per_head":
            raise ValueError(f"offset must be an int, one int per head, or 'per_head', got {offset!r}")
        return list(range(heads))
    offsets = [check_positive_int(int(o) if isinstance(o, torch.Tensor) else o, "offset", minimum=0) for o in offset]
    if len(offsets) != heads:
        raise ValueError(f"offset must hold one int per head ({heads}), got {len(offsets)}: {offsets}")
    return offsets


def check_finite_qkv(q, k, v) -> None:
    """Refuse NaN/±inf (unless inside ``postlib.allow_nonfinite()``): in a tile shared by past and future keys,
    0·NaN = NaN would leak a future value into earlier outputs, since a masked product does not stop NaN."""
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        check_finite(t, name, CAUSAL_NONFINITE)


def _check_args(q, k, v, kind, backend, params, scale=None):
    check_qkv(q, k, v)
    if scale is not None:
        check_number(scale, "scale")
    check_finite_qkv(q, k, v)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"sparse attention is self-attention: q and k must have the same length, got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}")
    check_choice(backend, "backend", BACKENDS)
    offsets = _per_head_offsets(params, q.shape[1]) if kind == "dilated" else None
    return offsets


def sparse_attention_reference(q, k, v, kind: str, *, causal: bool = False, scale: float | None = None, **params):
    """The definition: dense scores masked by ``attention_mask`` (builds L × L; tests and pictures only)."""
    offsets = _check_args(q, k, v, kind, "torch", params, scale)
    L = q.shape[2]
    if offsets is None:
        mask = attention_mask(kind, L, causal=causal, **params)
    else:
        mask = torch.stack([attention_mask(kind, L, causal=causal, **{**params, "offset": o}) for o in offsets])
    return masked_attention(q, k, v, mask, scale)


def sparse_attention(q, k, v, kind: str, *, causal: bool = False, backend: str = "auto", scale: float | None = None,
                     tile: int = 64, **params):
    """Softmax attention restricted to a sparse pattern, never building the L × L scores.

    Args:
        q, k, v: (batch, heads, length, head_dim) (v may have its own head_dim).
        kind: ``"sliding"``, ``"longformer"``, ``"bigbird"`` or ``"dilated"``; ``**params`` are the
            kind's parameters (``postlib.sparse.masks.PARAMETERS``). For ``"dilated"``, ``offset``
            may also be one int per head, or ``"per_head"`` (head h uses offset h: LongNet §2.3).
        causal: intersect the pattern with j <= i.
        backend: ``"torch"`` (``blocked_attention``), ``"triton"`` (the block-sparse kernel; CUDA, or
            CPU under ``TRITON_INTERPRET=1``), ``"auto"`` (Triton for CUDA tensors, else torch).
        scale: defaults to 1/√head_dim.
        tile: the block size of the block-sparse forms (a power of two in [16, 128] for Triton).
    Returns: (batch, heads, length, head_dim_v), equal to ``sparse_attention_reference``
    (``tests/sparse/test_sparse_attention.py``); a query that sees no key gets zeros.
    """
    offsets = _check_args(q, k, v, kind, backend, params, scale)
    check_positive_int(tile, "tile")
    if backend == "auto":
        from ..kernels import triton_available
        backend = "triton" if q.is_cuda and triton_available() else "torch"
    L = q.shape[2]
    if offsets is not None:   # heads with different offsets have different patterns
        groups: dict[int, list[int]] = {}
        for h, o in enumerate(offsets):
            groups.setdefault(o, []).append(h)
        parts = []
        for o, heads in groups.items():
            idx = torch.tensor(heads, device=q.device)
            pattern = make_pattern(kind, L, causal=causal, **{**params, "offset": o})
            parts.append((idx, _run(q[:, idx], k[:, idx], v[:, idx], pattern, backend, tile, scale)))
        out = torch.zeros(*q.shape[:3], v.shape[-1], dtype=q.dtype, device=q.device)
        for idx, part in parts:
            out = out.index_copy(1, idx, part)
        return out
    return _run(q, k, v, make_pattern(kind, L, causal=causal, **params), backend, tile, scale)


def _run(q, k, v, pattern, backend, tile, scale, return_lse=False):
    if backend == "triton":
        from ..kernels.block_sparse import block_sparse_attention_triton
        return block_sparse_attention_triton(q, k, v, pattern, tile=tile, scale=scale, return_lse=return_lse)
    return blocked_attention(q, k, v, pattern, tile=tile, scale=scale, return_lse=return_lse)


def pattern_attention(q, k, v, pattern: Pattern, *, backend: str = "torch", tile: int = 64,
                      scale: float | None = None, return_lse: bool = False):
    """Attention under an already built :class:`Pattern` (used by LongNet on its gathered branches)."""
    check_choice(backend, "backend", BACKENDS)
    if backend == "auto":
        from ..kernels import triton_available
        backend = "triton" if q.is_cuda and triton_available() else "torch"
    return _run(q, k, v, pattern, backend, tile, scale, return_lse)


__all__: Sequence[str] = ("sparse_attention", "sparse_attention_reference", "masked_attention", "blocked_attention",
                          "pattern_attention")
