"""Sparse attention patterns: which keys each query may see.

``attention_mask(kind, length, causal=False, **params)`` is the *definition*: a
``torch.bool`` tensor of shape (length, length), True where query i may attend key j.

* ``"sliding"`` (``window`` w): |i − j| ≤ w // 2. An odd window 2h+1 covers exactly
  w keys; an even window w covers w + 1 keys, like window w + 1 (Longformer §3.1 uses
  w/2 on each side too). With ``causal=True`` a token sees itself and w // 2 earlier ones.
* ``"longformer"`` (``window``, ``global_tokens``): sliding, plus a few global
  tokens that attend everywhere and that every token attends (Longformer §3.1).
* ``"bigbird"`` (``block_size`` b, ``num_random_blocks`` r, ``num_global_blocks`` g,
  ``seed``): in units of b × b blocks, the 3 window blocks around the diagonal, the
  first g block rows and block columns, and r random blocks in every other block row
  (drawn, reproducibly from ``seed``, among the blocks not already in the row).
  The mask is constant on b × b blocks; a last partial block is a block too
  (BigBird's ITC variant, Zaheer et al. 2020 §2 and App. D).
* ``"dilated"`` (``segment_lengths``, ``dilations``, ``offset``): LongNet's pattern
  (Ding et al. 2023 §2.2–2.3). For each pair (w, r) the sequence is cut into segments
  of w tokens; inside a segment the tokens whose position *within the segment* is
  ≡ offset (mod r) attend each other. The mask is the union over the pairs. (LongNet
  itself *mixes* the pairs instead of taking the union: ``postlib.sparse.longnet``.)
* ``causal=True`` intersects any of these with the lower triangle j ≤ i.

Every mask is the union of a few *components*: a band |i − j| ≤ h, global rows and
columns, a coarse block mask (BigBird), dilated segments (LongNet). :class:`Pattern`
holds them, evaluates the mask on any set of (row, column) indices without building
the L × L matrix (``allowed``), and says which (tile × tile) blocks of the matrix
hold an allowed entry (``tile_layout``) — what the block-sparse forms compute.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_choice, check_positive_int

KINDS = ("sliding", "longformer", "bigbird", "dilated")
REQUIRED = object()
# Each kind's parameters with their defaults (REQUIRED: no default).
PARAMETERS = {
    "sliding": {"window": REQUIRED},
    "longformer": {"window": REQUIRED, "global_tokens": ()},
    "bigbird": {"block_size": REQUIRED, "num_random_blocks": 1, "num_global_blocks": 1, "seed": 0},
    "dilated": {"segment_lengths": REQUIRED, "dilations": REQUIRED, "offset": 0},
}


def _int_list(value, name: str, minimum: int) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of ints >= {minimum}, got {value!r}") from None
    out = []
    for item in items:
        if isinstance(item, torch.Tensor) and item.dim() == 0:
            item = int(item)
        out.append(check_positive_int(item, name, minimum=minimum))
    return out


def check_params(kind: str, params: dict) -> dict:
    """Fill defaults and validate a pattern's parameters; errors name the parameter."""
    check_choice(kind, "kind", KINDS)
    spec = PARAMETERS[kind]
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise TypeError(f"attention_mask({kind!r}) got unexpected parameter(s) {unknown}; "
                        f"{kind!r} takes {sorted(spec)}")
    out = {}
    for name, default in spec.items():
        if name not in params and default is REQUIRED:
            raise TypeError(f"attention_mask({kind!r}) needs {name}=... (its parameters: {sorted(spec)})")
        out[name] = params.get(name, default)
    if kind in ("sliding", "longformer"):
        check_positive_int(out["window"], "window")
    if kind == "longformer":
        out["global_tokens"] = tuple(sorted(set(_int_list(out["global_tokens"], "global_tokens", 0))))
    if kind == "bigbird":
        check_positive_int(out["block_size"], "block_size")
        check_positive_int(out["num_random_blocks"], "num_random_blocks", minimum=0)
        check_positive_int(out["num_global_blocks"], "num_global_blocks", minimum=0)
        check_positive_int(out["seed"], "seed", minimum=0)
    if kind == "dilated":
        seg = _int_list(out["segment_lengths"], "segment_lengths", 1)
        dil = _int_list(out["dilations"], "dilations", 1)
        if len(seg) != len(dil):
            raise ValueError(f"segment_lengths and dilations must have the same length (one dilation per segment "
                             f"length), got segment_lengths={seg} and dilations={dil}")
        if not seg:
            raise ValueError("segment_lengths must name at least one segment length, got []")
        out["segment_lengths"], out["dilations"] = tuple(seg), tuple(dil)
        check_positive_int(out["offset"], "offset", minimum=0)
    return out


def bigbird_block_mask(num_blocks: int, num_random_blocks: int, num_global_blocks: int, seed: int) -> torch.Tensor:
    """BigBird's (num_blocks × num_blocks) block mask: window ∪ global ∪ random (see the module docstring).

    Random blocks: for every block row I ≥ g, ``num_random_blocks`` distinct columns drawn
    uniformly (``torch.randperm`` with a generator seeded by ``seed``) among the columns
    that are neither in I's window nor global; all of them if there are fewer.
    """
    n, g = num_blocks, min(num_global_blocks, num_blocks)
    mask = torch.ones(n, n, dtype=torch.bool).triu(-1).tril(1)   # |I − J| <= 1, one byte per block pair
    mask[:g, :] = True
    mask[:, :g] = True
    if num_random_blocks:
        gen = torch.Generator().manual_seed(seed)
        for row in range(g, n):
            free = (~mask[row]).nonzero().flatten()
            if free.numel():
                pick = free[torch.randperm(free.numel(), generator=gen)[:num_random_blocks]]
                mask[row, pick] = True
    return mask


@dataclass(frozen=True)
class Pattern:
    """One head's sparsity pattern as the union of its components (then ∩ causal).

    ``half_window`` h: the band |i − j| ≤ h. ``global_flags`` (length,): global tokens.
    ``coarse`` (n, n) with ``coarse_block`` b: allowed where coarse[i // b, j // b].
    ``pairs``: dilated (w, r, o) triples, o < r: same segment of w and both positions
    within the segment ≡ o (mod r). Build one with :func:`make_pattern`.
    """

    kind: str
    length: int
    causal: bool
    params: dict
    half_window: int | None = None
    global_flags: torch.Tensor | None = None
    coarse: torch.Tensor | None = None
    coarse_block: int = 0
    pairs: tuple = ()

    def allowed(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The mask at integer positions ``rows`` and ``cols`` (broadcast); False beyond ``length``."""
        L = self.length
        inside = (rows >= 0) & (rows < L) & (cols >= 0) & (cols < L)
        r, c = rows.clamp(0, L - 1), cols.clamp(0, L - 1)
        ok = torch.zeros(torch.broadcast_shapes(rows.shape, cols.shape), dtype=torch.bool, device=rows.device)
        if self.half_window is not None:
            ok = ok | ((r - c).abs() <= self.half_window)
        if self.global_flags is not None:
            flags = self.global_flags.to(rows.device)
            ok = ok | flags[r] | flags[c]
        if self.coarse is not None:
            ok = ok | self.coarse.to(rows.device)[r // self.coarse_block, c // self.coarse_block]
        for w, rate, o in self.pairs:
            ok = ok | ((r // w == c // w) & ((r % w) % rate == o) & ((c % w) % rate == o))
        if self.causal:
            ok = ok & (c <= r)
        return ok & inside

    def dense(self, device=None) -> torch.Tensor:
        """The (length, length) boolean mask (for pictures and the reference only: it is L × L)."""
        i = torch.arange(self.length, device=device)
        return self.allowed(i[:, None], i[None, :])

    def tile_layout(self, tile_q: int, tile_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(any, full)``: two (n_q_tiles, n_k_tiles) boolean matrices, computed without the L × L mask.

        ``any[I, J]`` is True when tile (I, J) holds at least one allowed entry (it may be
        True for a few tiles that hold none: computing such a tile is wasted work, never a
        wrong answer); ``full[I, J]`` only when every entry of the tile is allowed and
        inside the sequence (so a kernel may skip the element mask there).
        """
        from .layout import tile_layout
        return tile_layout(self, tile_q, tile_k or tile_q)


def make_pattern(kind: str, length: int, *, causal: bool = False, **params) -> Pattern:
    """Validate ``params`` for ``kind`` and return its :class:`Pattern` (see the module docstring)."""
    check_positive_int(length, "length")
    p = check_params(kind, params)
    common = dict(kind=kind, length=length, causal=bool(causal), params=p)
    if kind == "sliding":
        return Pattern(**common, half_window=p["window"] // 2)
    if kind == "longformer":
        bad = [g for g in p["global_tokens"] if g >= length]
        if bad:
            raise ValueError(f"global_tokens must be indices in [0, length={length}), got {bad}")
        flags = torch.zeros(length, dtype=torch.bool)
        flags[list(p["global_tokens"])] = True
        return Pattern(**common, half_window=p["window"] // 2, global_flags=flags if p["global_tokens"] else None)
    if kind == "bigbird":
        b = p["block_size"]
        n = -(-length // b)
        coarse = bigbird_block_mask(n, p["num_random_blocks"], p["num_global_blocks"], p["seed"])
        return Pattern(**common, coarse=coarse, coarse_block=b)
    pairs = tuple((w, r, p["offset"] % r) for w, r in zip(p["segment_lengths"], p["dilations"]))
    return Pattern(**common, pairs=pairs)


def attention_mask(kind: str, length: int, *, causal: bool = False, **params) -> torch.Tensor:
    """The (length, length) ``torch.bool`` mask of a sparse pattern: True where query i may attend key j.

    Args:
        kind: ``"sliding"``, ``"longformer"``, ``"bigbird"`` or ``"dilated"`` (see the module docstring).
        length: sequence length L >= 1.
        causal: intersect with the lower triangle (j <= i).
        **params: the kind's parameters, ``PARAMETERS[kind]``.
    Example: ``attention_mask("longformer", 16, window=5, global_tokens=[0])``.
    Tested against a literal loop over the definition in ``tests/sparse/test_masks.py``.
    """
    return make_pattern(kind, length, causal=causal, **params).dense()
