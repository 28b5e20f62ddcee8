"""What a sparsity pattern costs and what it can reach: counted, not measured.

* ``pattern_cost`` — tiles computed against all L² / tile² tiles, allowed entries, and the
  bytes of scores a pattern needs against dense attention, from the formula
  (entries × heads × bytes per score), at any L (the L × L mask is never built).
* ``receptive_field`` — which tokens can reach token t through k layers. One layer lets
  i read j when mask[i, j]; k layers compose: reach_k = reach_{k−1} · M (boolean), one
  sparse vector-matrix product per layer. A band of half-width h grows by h per layer;
  LongNet's dilated pairs grow geometrically (Ding et al. 2023, §2.4).
* ``path_lengths`` — shortest paths in the attention graph (edge j → i when i attends j):
  the number of layers information needs to travel between two tokens. BigBird's
  argument (Zaheer et al. 2020, §2): random blocks make the graph an expander (diameter
  ~ log L), one global block makes it a star (diameter ≤ 2); a window alone needs ~ L / h.
"""
from __future__ import annotations

import numpy as np
import torch

from .._checks import check_positive_int
from .masks import Pattern, make_pattern


def _pattern(kind_or_pattern, length=None, causal=False, params=None) -> Pattern:
    if isinstance(kind_or_pattern, Pattern):
        return kind_or_pattern
    return make_pattern(kind_or_pattern, length, causal=causal, **(params or {}))


def _head_patterns(kind, length, causal, params, heads: int) -> list[Pattern]:
    """One pattern, or for LongNet with ``offset="per_head"`` one per head (head h uses offset h, §2.3)."""
    if isinstance(kind, Pattern):
        return [kind]
    if params.get("offset") == "per_head":
        check_positive_int(heads, "heads")
        return [make_pattern(kind, length, causal=causal, **{**params, "offset": h}) for h in range(heads)]
    return [make_pattern(kind, length, causal=causal, **params)]


def allowed_entries(pattern: Pattern, tile: int = 64) -> int:
    """Number of True entries of the mask, counted tile by tile over the computed tiles only."""
    any_, full = pattern.tile_layout(tile)
    total = int(full.sum()) * tile * tile
    rows, cols = (any_ & ~full).nonzero(as_tuple=True)
    pos = torch.arange(tile)
    for start in range(0, rows.numel(), 256):
        r = (rows[start:start + 256, None] * tile + pos)[:, :, None]
        c = (cols[start:start + 256, None] * tile + pos)[:, None, :]
        total += int(pattern.allowed(r, c).sum())
    return total


def pattern_cost(kind, length: int | None = None, *, causal: bool = False, tile: int = 64, heads: int = 1,
                 bytes_per_score: int = 4, **params) -> dict:
    """Counted cost of a pattern at length L (no attention is run).

    Returns ``tiles_computed``, ``tiles_total`` (= ⌈L/tile⌉²), ``tile_fraction``; ``entries``
    (allowed (i, j)), ``entry_fraction`` (of L²); and bytes of scores for one layer of
    ``heads`` heads: ``dense_bytes`` = L²·heads·b, ``sparse_bytes`` = entries·heads·b (a form
    that stores only allowed scores, e.g. Longformer's banded matrix), ``blocked_bytes`` =
    tiles_computed·tile²·heads·b (a block-sparse form holding all its tiles at once).
    """
    pattern = _pattern(kind, length, causal, params)
    check_positive_int(tile, "tile")
    L = pattern.length
    any_, _ = pattern.tile_layout(tile)
    entries = allowed_entries(pattern, tile)
    computed = int(any_.sum())
    n = any_.shape[0]
    return {"length": L, "tile": tile, "tiles_computed": computed, "tiles_total": n * n,
            "tile_fraction": computed / (n * n), "entries": entries, "entry_fraction": entries / (L * L),
            "dense_bytes": L * L * heads * bytes_per_score, "sparse_bytes": entries * heads * bytes_per_score,
            "blocked_bytes": computed * tile * tile * heads * bytes_per_score}


def _sparse_mask(pattern: Pattern):
    """The mask as a scipy CSR matrix, assembled from its components in O(allowed entries)."""
    from scipy import sparse

    L = pattern.length
    parts = []
    if pattern.half_window is not None:
        h = min(pattern.half_window, L - 1)
        parts.append(sparse.diags([np.ones(L - abs(d), dtype=np.float32) for d in range(-h, h + 1)],
                                  list(range(-h, h + 1)), shape=(L, L)))
    if pattern.global_flags is not None:
        g = pattern.global_flags.numpy().astype(np.float32)
        parts.append(sparse.csr_matrix(g[:, None]) @ sparse.csr_matrix(np.ones((1, L), dtype=np.float32)))
        parts.append(sparse.csr_matrix(np.ones((L, 1), dtype=np.float32)) @ sparse.csr_matrix(g[None, :]))
    if pattern.coarse is not None:
        b = pattern.coarse_block
        blocks = sparse.kron(sparse.csr_matrix(pattern.coarse.numpy().astype(np.float32)),
                             np.ones((b, b), dtype=np.float32), format="csr")
        parts.append(blocks[:L, :L])
    for w, r, o in pattern.pairs:
        rows, cols = [], []
        for start in range(0, L, w):
            kept = np.arange(start + o, min(start + w, L), r)
            rows.append(np.repeat(kept, kept.size))
            cols.append(np.tile(kept, kept.size))
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        parts.append(sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(L, L)))
    mask = sum(parts[1:], parts[0]).tocsr()
    mask.data[:] = 1.0
    if pattern.causal:
        mask = sparse.tril(mask, format="csr")
    mask.eliminate_zeros()
    return mask


def receptive_field(kind, length: int | None = None, *, token: int | None = None, layers: int = 4,
                    causal: bool = False, heads: int = 1, **params) -> torch.Tensor:
    """(layers + 1, L) bool: row k marks the tokens whose information reaches ``token`` after k layers.

    Row 0 is {token}; row k = row k−1 ∨ (row k−1 · M), one sparse product per layer
    (every pattern here lets a token see itself, so reach only grows). ``token``
    defaults to the last position. ``kind`` may also be a ``Pattern``. For LongNet pass
    ``offset="per_head"`` and ``heads``: a token reads j when *any* head lets it (the heads'
    offsets 0 … heads − 1 cover the residues that one offset would miss).
    """
    patterns = _head_patterns(kind, length, causal, params, heads)
    L = patterns[0].length
    token = L - 1 if token is None else token
    if not isinstance(token, int) or not 0 <= token < L:
        raise ValueError(f"token must be an index in [0, length={L}), got {token!r}")
    check_positive_int(layers, "layers", minimum=0)
    mask = sum(_sparse_mask(p) for p in patterns)
    reach = np.zeros(L, dtype=np.float32)
    reach[token] = 1.0
    rows = [reach > 0]
    for _ in range(layers):
        reach = np.minimum(reach + mask.T.dot(reach), 1.0)
        rows.append(reach > 0)
    return torch.from_numpy(np.stack(rows))


def path_lengths(kind, length: int | None = None, *, causal: bool = False, tile: int = 64, **params) -> dict:
    """Shortest paths in the attention graph (edge j → i when i attends j), in layers.

    Returns ``diameter`` (the longest shortest path over the pairs that are connected),
    ``mean`` (over those pairs, i ≠ j), and ``connected`` (the fraction of ordered pairs
    (i, j), i ≠ j, with a path from j to i; under a causal mask at most about half).
    BigBird's mask is constant on its blocks, so the search runs on the block graph
    (two tokens of one block are 1 apart); other kinds run on tokens.
    """
    from scipy.sparse import csgraph, csr_matrix

    pattern = _pattern(kind, length, causal, params)
    if pattern.coarse is not None and not pattern.causal:
        n, b, L = pattern.coarse.shape[0], pattern.coarse_block, pattern.length
        graph = csr_matrix(pattern.coarse.T.numpy().astype(np.float32))
        dist = csgraph.shortest_path(graph, method="D", unweighted=True)
        sizes = np.array([min(b, L - i * b) for i in range(n)], dtype=np.float64)
        weight = np.outer(sizes, sizes)
        np.fill_diagonal(weight, sizes * (sizes - 1))   # pairs inside a block are 1 apart
        dist = np.where(np.eye(n, dtype=bool), 1.0, dist)
        mask = np.isfinite(dist) & (weight > 0)
        pairs = weight[mask].sum()
        diameter = int(dist[mask].max()) if pairs else 0
        mean = float((dist[mask] * weight[mask]).sum() / pairs) if pairs else 0.0
        return {"length": L, "diameter": diameter, "mean": mean, "connected": float(pairs / max(L * (L - 1), 1))}
    graph = _sparse_mask(pattern).T.tocsr()        # row j → the tokens that read j
    dist = csgraph.shortest_path(graph, method="D", unweighted=True)
    L = pattern.length
    off = ~np.eye(L, dtype=bool)
    reach = np.isfinite(dist) & off
    if not reach.any():
        return {"length": L, "diameter": 0, "mean": 0.0, "connected": 0.0}
    return {"length": L, "diameter": int(dist[reach].max()), "mean": float(dist[reach].mean()),
            "connected": float(reach.sum() / max(L * (L - 1), 1))}


def reach_matrix(mask: torch.Tensor, layers: int) -> torch.Tensor:
    """(L, L) bool: i can read j through at most ``layers`` layers, i.e. (M ∨ I)^layers, by repeated squaring."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"mask must be a square (L, L) tensor, got {getattr(mask, 'shape', type(mask))}")
    check_positive_int(layers, "layers", minimum=0)
    step = (mask.bool() | torch.eye(mask.shape[0], dtype=torch.bool)).float()
    out = torch.eye(mask.shape[0])
    while layers:
        if layers & 1:
            out = ((out @ step) > 0).float()
        step = ((step @ step) > 0).float()
        layers >>= 1
    return out.bool()


MAX_FORMULA_BLOCKS = 4096


def pattern_scores(kind: str, length: int, *, causal: bool = False, **params) -> int:
    """Number of (query, key) scores a pattern keeps, from its formula, in O(L) or O(blocks²) — never L².

    * sliding: Σ_i |{j : |i − j| ≤ h}| (∩ j ≤ i when causal), in closed form;
    * longformer: per row, the band plus the global tokens outside it (all keys for a global row);
    * bigbird: the coarse block mask weighted by block sizes (a causal diagonal block keeps its triangle);
      at most ``MAX_FORMULA_BLOCKS`` blocks per side;
    * dilated: what LongNet computes — each branch's segments, (w/r)² scores each ((w/r)(w/r + 1)/2 when
      causal) — which counts a pair reached by two branches twice, unlike the union mask.

    ``tests/sparse/test_analysis.py`` checks every kind against the dense count at small L.
    """
    from .masks import check_params

    check_positive_int(length, "length")
    p = check_params(kind, params)
    L = length
    if kind in ("sliding", "longformer"):
        h = p["window"] // 2
        i = torch.arange(L, dtype=torch.long)
        lo = (i - h).clamp(min=0)
        hi = i if causal else (i + h).clamp(max=L - 1)
        band = hi - lo + 1
        if kind == "sliding" or not p["global_tokens"]:
            return int(band.sum())
        bad = [g for g in p["global_tokens"] if g >= L]
        if bad:
            raise ValueError(f"global_tokens must be indices in [0, length={L}), got {bad}")
        flags = torch.zeros(L, dtype=torch.long)
        flags[list(p["global_tokens"])] = 1
        prefix = torch.cat([torch.zeros(1, dtype=torch.long), flags.cumsum(0)])
        visible = i + 1 if causal else torch.full_like(i, L)                # keys a global row sees
        limit = i if causal else torch.full_like(i, L - 1)
        globals_seen = prefix[limit + 1]                                      # globals at j <= limit
        in_band = prefix[hi + 1] - prefix[lo]
        rows = torch.where(flags.bool(), visible, band + globals_seen - in_band)
        return int(rows.sum())
    if kind == "bigbird":
        from .masks import bigbird_block_mask

        b = p["block_size"]
        n = -(-L // b)
        if n > MAX_FORMULA_BLOCKS:
            raise ValueError(f"length / block_size = {n} blocks is more than {MAX_FORMULA_BLOCKS} per side for the "
                             "bigbird count; use a larger block_size")
        coarse = bigbird_block_mask(n, p["num_random_blocks"], p["num_global_blocks"], p["seed"])
        size = torch.full((n,), b, dtype=torch.long)
        size[-1] = L - (n - 1) * b                                            # the last block may be short
        if causal:    # whole blocks strictly below the diagonal, then each diagonal block's triangle
            coarse = coarse.tril(-1)
        # Σ_J coarse[I, J]·size[J] per block row, without an (n × n) integer matrix: every block has b keys
        # but the last one.
        keys = coarse.sum(1, dtype=torch.long) * b - coarse[:, -1].long() * (b - size[-1])
        total = int((size * keys).sum())
        return total + (int((size * (size + 1) // 2).sum()) if causal else 0)
    total = 0
    for w, r in zip(p["segment_lengths"], p["dilations"]):
        o = p["offset"] % r
        whole, rest = divmod(L, w)
        m_whole = len(range(o, w, r))
        m_rest = len(range(o, rest, r))
        per = (lambda m: m * (m + 1) // 2) if causal else (lambda m: m * m)
        total += whole * per(m_whole) + per(m_rest)
    return int(total)


def pattern_memory(kind: str, length: int, *, causal: bool = False, heads: int = 1, bytes_per_score: int = 4,
                   **params) -> dict:
    """Bytes of attention scores for one layer at ``length``, counted from the formula (``pattern_scores``),
    against dense attention's L² (L(L+1)/2 when causal). Nothing is allocated: works at L = 10⁶."""
    check_positive_int(heads, "heads")
    L = length
    scores = pattern_scores(kind, length, causal=causal, **params)
    dense = L * (L + 1) // 2 if causal else L * L
    return {"length": L, "heads": heads, "scores": scores, "dense_scores": dense,
            "pattern_bytes": scores * heads * bytes_per_score, "dense_bytes": dense * heads * bytes_per_score,
            "fraction": scores / dense}
