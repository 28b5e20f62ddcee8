"""LongNet's dilated attention (Ding et al. 2023, §2.2–2.3): branches mixed by their softmax denominators.

For one pair (w, r), LongNet cuts the sequence into segments of w tokens and keeps, in
each segment, every r-th position starting at the offset s (§2.2):

    Q̃_i = [Q_{iw+s}, Q_{iw+s+r}, Q_{iw+s+2r}, ...],   K̃_i, Ṽ_i alike,
    Õ_i = softmax(Q̃_i K̃_iᵀ) Ṽ_i,

then scatters Õ_i back to its positions (zero elsewhere). Several pairs (w_k, r_k) run
side by side and are mixed with weights proportional to each branch's softmax
denominator s_k = Σ_j exp(q·k_j):

    O = Σ_k α_k O_k,    α_k = s_k / Σ_k' s_k'.

With α so chosen the mixture is *one* softmax over the keys of all branches — but a key
that two branches both reach is counted twice. So LongNet equals dense attention with an
additive bias log c_ij, where c_ij is the number of branches in which i sees j (−inf
where c_ij = 0), and it equals the *union* mask (``attention_mask("dilated", ...)``)
only where no query sees a key through two branches. ``branch_counts`` gives c;
``tests/sparse/test_longnet.py`` checks both statements.

Heads (§2.3): head j uses offset s_j = j mod r, so different heads cover different
positions (``offset="per_head"``). The official code (``torchscale``) instead splits
the heads into r equal groups, group g using offset g; pass that as an explicit
(heads × pairs) table. It also stops the gradient through α; ours lets it flow (α is a
function of q and k), so the forward values agree and the gradients need not.

Forms: ``dilated_attention_reference`` — each branch as dense masked attention (builds
L × L; tests only); ``dilated_attention`` — each branch *gathers* its positions into a
short sequence and runs block-diagonal attention on it (``pattern_attention``: block-sparse
PyTorch or the Triton kernel), O(L · w / r²) work per branch.
"""
from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_number, check_positive_int, check_qkv
from .attention import BACKENDS, check_finite_qkv, masked_attention, pattern_attention
from .masks import attention_mask, check_params, make_pattern


def offset_table(offset, heads: int, dilations) -> list[list[int]]:
    """Per (head, pair) offsets, reduced mod r: from an int, ``"per_head"`` (head j → j, LongNet §2.3),
    one int per head, or a (heads × pairs) nested list (e.g. torchscale's head groups)."""
    rates = list(dilations)
    if isinstance(offset, str):
        if offset != "per_head":
            raise ValueError(f"offset must be an int, 'per_head', one int per head or a (heads × pairs) table, "
                             f"got {offset!r}")
        return [[h % r for r in rates] for h in range(heads)]
    if isinstance(offset, int) and not isinstance(offset, bool):
        check_positive_int(offset, "offset", minimum=0)
        return [[offset % r for r in rates] for _ in range(heads)]
    rows = list(offset)
    if len(rows) != heads:
        raise ValueError(f"offset must hold one entry per head ({heads}), got {len(rows)}")
    table = []
    for row in rows:
        row = [row] * len(rates) if isinstance(row, int) else list(row)
        if len(row) != len(rates):
            raise ValueError(f"each head's offsets must hold one int per (segment, dilation) pair ({len(rates)}), "
                             f"got {row}")
        table.append([check_positive_int(o, "offset", minimum=0) % r for o, r in zip(row, rates)])
    return table


def _check(q, k, v, segment_lengths, dilations, offset, scale=None):
    check_qkv(q, k, v)
    if scale is not None:
        check_number(scale, "scale")
    check_finite_qkv(q, k, v)
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"dilated attention is self-attention: q and k must have the same length, got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}")
    p = check_params("dilated", {"segment_lengths": segment_lengths, "dilations": dilations})
    pairs = list(zip(p["segment_lengths"], p["dilations"]))
    return pairs, offset_table(offset, q.shape[1], p["dilations"])


def mix_branches(outs, lses):
    """O = Σ_k α_k O_k with α_k = exp(lse_k) / Σ_k' exp(lse_k'); positions no branch covers get 0."""
    lse = torch.stack(lses)                                   # (branches, B, H, L)
    top = lse.amax(0).detach()
    top = torch.where(torch.isinf(top), torch.zeros_like(top), top)
    weights = torch.exp(lse - top)
    total = weights.sum(0)
    weights = weights / torch.where(total > 0, total, torch.ones_like(total))
    return sum(w[..., None] * o for w, o in zip(weights, outs))


def dilated_attention_reference(q, k, v, segment_lengths, dilations, *, causal: bool = False, offset=0,
                                scale: float | None = None):
    """LongNet from its equations: each branch is dense attention under its own (w, r) mask; then the mixture.

    Builds (heads, L, L) masks: tests and small pictures only.
    """
    pairs, table = _check(q, k, v, segment_lengths, dilations, offset, scale)
    L, H = q.shape[2], q.shape[1]
    outs, lses = [], []
    for p, (w, r) in enumerate(pairs):
        masks = torch.stack([attention_mask("dilated", L, causal=causal, segment_lengths=[w], dilations=[r],
                                            offset=table[h][p]) for h in range(H)])
        out, lse = masked_attention(q, k, v, masks, scale, return_lse=True)
        outs.append(out.to(lse.dtype))
        lses.append(lse)
    return mix_branches(outs, lses).to(q.dtype)


def selected_positions(length: int, w: int, r: int, o: int) -> torch.Tensor:
    """Positions a branch keeps, in order: within each segment of w, those ≡ o (mod r), below ``length``."""
    per_segment = torch.arange(o, w, r)
    starts = torch.arange(0, length, w)
    pos = (starts[:, None] + per_segment[None, :]).flatten()
    return pos[pos < length]


def dilated_attention(q, k, v, segment_lengths, dilations, *, causal: bool = False, offset=0,
                      scale: float | None = None, backend: str = "auto", tile: int = 64):
    """LongNet's dilated attention, equal to ``dilated_attention_reference`` (tests/sparse/test_longnet.py).

    Args:
        q, k, v: (batch, heads, length, head_dim).
        segment_lengths, dilations: the pairs (w_k, r_k), lists of equal length.
        causal: inside a branch, a position sees only kept positions <= itself.
        offset: int, ``"per_head"`` (LongNet §2.3), one int per head, or a (heads × pairs) table.
        backend: how each branch's block-diagonal attention runs: ``"torch"``, ``"triton"`` or ``"auto"``.
        tile: the tile of the block-sparse forms (capped at the gathered segment length).
    Never builds an L × L matrix: a branch costs O((L / w) · (w / r)²).
    """
    pairs, table = _check(q, k, v, segment_lengths, dilations, offset, scale)
    check_choice(backend, "backend", BACKENDS)
    check_positive_int(tile, "tile")
    if backend == "auto":
        from ..kernels import triton_available
        backend = "triton" if q.is_cuda and triton_available() else "torch"
    B, H, L, _ = q.shape
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    outs, lses = [], []
    for p, (w, r) in enumerate(pairs):
        out = q.new_zeros(B, H, L, v.shape[-1], dtype=work)
        lse = q.new_full((B, H, L), float("-inf"), dtype=work)
        groups: dict[int, list[int]] = {}
        for h in range(H):
            groups.setdefault(table[h][p], []).append(h)
        for o, heads in groups.items():
            pos = selected_positions(L, w, r, o).to(q.device)
            if pos.numel() == 0:
                continue
            m = len(range(o, w, r))          # kept positions per whole segment
            hs = torch.tensor(heads, device=q.device)
            qg, kg, vg = (t[:, hs][:, :, pos] for t in (q, k, v))
            inner = make_pattern("dilated", pos.numel(), causal=causal, segment_lengths=[m], dilations=[1])
            t_g = min(tile, m) if backend == "torch" else min(tile, max(16, 1 << (m - 1).bit_length()))
            og, lg = pattern_attention(qg, kg, vg, inner, backend=backend, tile=t_g, scale=scale, return_lse=True)
            out[:, hs[:, None], pos[None, :]] = og.to(work)
            lse[:, hs[:, None], pos[None, :]] = lg.to(work)
        outs.append(out)
        lses.append(lse)
    return mix_branches(outs, lses).to(q.dtype)


def branch_counts(length: int, segment_lengths, dilations, *, causal: bool = False, offset: int = 0) -> torch.Tensor:
    """(L, L) int: in how many branches query i sees key j. LongNet ≡ softmax(scores + log c) (module docstring);
    the union mask is c > 0. Dense: for pictures and tests."""
    p = check_params("dilated", {"segment_lengths": segment_lengths, "dilations": dilations, "offset": offset})
    counts = torch.zeros(length, length, dtype=torch.long)
    for w, r in zip(p["segment_lengths"], p["dilations"]):
        counts += attention_mask("dilated", length, causal=causal, segment_lengths=[w], dilations=[r],
                                 offset=offset).long()
    return counts


def branch_flops(length: int, segment_lengths, dilations, head_dim: int) -> float:
    """LongNet's cost, counted (§2.4): each branch does 2·(L / w)·(w / r)²·d multiply-adds for QKᵀ and again
    for PV; with whole segments. Compare dense attention: 4·L²·d."""
    p = check_params("dilated", {"segment_lengths": segment_lengths, "dilations": dilations})
    total = 0.0
    for w, r in zip(p["segment_lengths"], p["dilations"]):
        w_eff = min(w, length)
        total += 4.0 * math.ceil(length / w_eff) * math.ceil(w_eff / r) ** 2 * head_dim
    return total
