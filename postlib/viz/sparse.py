"""Figures for sparse attention: masks, tile layouts, receptive fields, path lengths, cost.

Pure builders (data or a pattern's parameters in, ``go.Figure`` out) shared by the chapter
``chapters/06_sparse_recurrent/sparse_attention.md`` and the dashboard page ``sparsity``; the
builders that take a pattern's parameters (``pattern_figure``, ``pattern_reach_figure``,
``memory_formula_figure``) compute it with ``postlib.sparse``, so the page caches them by argument.
A mask is drawn white where a query may not look and dark where it may (``MAGNITUDE``
scale, query rows down, key columns across); counts and reach use the sequential scale.
"""
from __future__ import annotations

import functools
import math
from typing import Iterable, Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .._checks import check_positive_int
from ..sparse import make_pattern, receptive_field
from ..sparse.analysis import pattern_memory
from . import palette
from .theme import caption_text, coloraxis, finish, provenance_sentence


def _array(mask) -> np.ndarray:
    arr = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a mask must be 2-D (queries, keys), got shape {arr.shape}")
    return arr


def _mask_trace(mask: np.ndarray, name: str) -> go.Heatmap:
    return go.Heatmap(z=mask.astype(np.int8), zmin=0, zmax=1, colorscale=palette.MAGNITUDE, showscale=False,
                      name=name, hovertemplate="query %{y}, key %{x}: %{z}<extra>" + name + "</extra>")


def _square_axes(fig: go.Figure, n: int, row: int | None = None, col: int | None = None) -> None:
    where = {} if col is None else dict(row=row or 1, col=col)
    fig.update_xaxes(range=[-0.5, n - 0.5], title="key j", showgrid=False, constrain="domain", **where)
    fig.update_yaxes(range=[n - 0.5, -0.5], title="query i", showgrid=False, **where)


def _tile_cells(any_: np.ndarray, tile: int, L: int) -> np.ndarray:
    """The (L, L) cells of the computed tiles: tile (I, J) spread over its tile × tile cells."""
    return np.kron(any_.astype(np.int8), np.ones((tile, tile), dtype=np.int8))[:L, :L]


def pattern_figure(kind: str, length: int, *, causal: bool = False, tile: int = 16, name: str | None = None,
                   caption: str | None = None, **params) -> go.Figure:
    """The mask of ``attention_mask(kind, length, causal=causal, **params)`` over the tiles a block-sparse
    kernel computes for it (``Pattern.tile_layout(tile)``, counted without the L × L mask).

    Three shades: dark where query i may attend key j, light where a computed tile masks the pair out,
    white in the tiles the kernel skips. ``z`` of the heatmap is 2, 1, 0 respectively.
    """
    check_positive_int(tile, "tile")
    pattern = make_pattern(kind, length, causal=causal, **params)
    mask = pattern.dense().numpy()
    any_, full = (t.numpy() for t in pattern.tile_layout(tile))
    z = np.maximum(_tile_cells(any_, tile, length), 2 * mask.astype(np.int8))
    # The hover names the three values in one template: a per-cell label array would cost tens of bytes per
    # cell in the figure's JSON (MiB at L = 512) for three distinct strings.
    fig = go.Figure(go.Heatmap(z=z, zmin=0, zmax=2, colorscale=palette.MAGNITUDE, showscale=False,
                               hovertemplate="query %{y}, key %{x}: %{z}<br>(2 allowed, 1 computed and masked, "
                                             "0 skipped tile)<extra></extra>"))
    _square_axes(fig, length)
    computed, total = int(any_.sum()), any_.size
    label = name or kind
    return finish(fig, "Mask and the tiles it needs", caption or caption_text(
        f"{label}{' (causal)' if causal else ''}, L = {length}: dark cells are the {int(mask.sum()):,} allowed "
        f"(query, key) pairs, {100 * mask.mean():.1f}% of the L² of dense attention",
        f"A block-sparse kernel with tiles of {tile} × {tile} computes {computed} of the {total} tiles "
        f"({100 * computed / total:.1f}%; light cells are masked inside them, {int(full.sum())} tiles need no "
        "mask) and skips the white ones"), height=460)


def pattern_gallery(masks: Mapping[str, object], *, caption: str | None = None) -> go.Figure:
    """Masks side by side (one panel each, titled with its name and its fraction of L²)."""
    items = [(name, _array(m)) for name, m in masks.items()]
    if not items:
        raise ValueError("masks must not be empty")
    titles = [f"{name}: {100 * m.mean():.0f}%" for name, m in items]
    fig = make_subplots(rows=1, cols=len(items), subplot_titles=titles, horizontal_spacing=0.07)
    for c, (name, m) in enumerate(items, start=1):
        fig.add_trace(_mask_trace(m, name), row=1, col=c)
        _square_axes(fig, m.shape[0], col=c)
    L = items[0][1].shape[0]
    return finish(fig, "From the full mask to sparse patterns", caption or caption_text(
        f"L = {L}; each panel's title gives the fraction of the L² (query, key) pairs it keeps"),
                  height=340)


def tile_layout_figure(layouts: Mapping[str, object], tile: int, *, caption: str | None = None) -> go.Figure:
    """Which (tile × tile) blocks a block-sparse form computes, per pattern (dark: computed)."""
    items = [(name, _array(a)) for name, a in layouts.items()]
    titles = [f"{name}: {a.sum()}/{a.size} tiles" for name, a in items]
    fig = make_subplots(rows=1, cols=len(items), subplot_titles=titles, horizontal_spacing=0.07)
    for c, (name, a) in enumerate(items, start=1):
        fig.add_trace(go.Heatmap(z=a.astype(np.int8), zmin=0, zmax=1, colorscale=palette.MAGNITUDE,
                                 showscale=False, hovertemplate="query tile %{y}, key tile %{x}: %{z}<extra>"
                                 + name + "</extra>"), row=1, col=c)
        n = a.shape[0]
        fig.update_xaxes(range=[-0.5, n - 0.5], title="key tile J", showgrid=False, row=1, col=c)
        fig.update_yaxes(range=[n - 0.5, -0.5], title="query tile I", showgrid=False, row=1, col=c)
    return finish(fig, "Tiles a block-sparse kernel computes", caption or caption_text(
        f"Tiles of {tile} × {tile}; a tile is computed when it holds at least one allowed pair, and the kernel "
        "never loads the others"), height=340)


def branch_counts_figure(counts, *, caption: str | None = None) -> go.Figure:
    """LongNet: in how many (w, r) branches query i reaches key j (0 = not at all)."""
    arr = _array(counts).astype(float)
    L = arr.shape[0]
    fig = go.Figure(go.Heatmap(z=np.where(arr > 0, arr, np.nan), coloraxis="coloraxis",
                               hovertemplate="query %{y}, key %{x}: %{z} branches<extra></extra>"))
    coloraxis(fig, colorscale=palette.SEQUENTIAL, title="branches", cmin=1, cmax=max(2.0, float(arr.max())))
    _square_axes(fig, L)
    shared = int((arr > 1).sum())
    return finish(fig, "Keys reached through several branches", caption or caption_text(
        f"L = {L}. LongNet's mixture weighs key j for query i by the number of branches that reach it (colour); "
        f"{shared} of {int((arr > 0).sum())} reached pairs are reached more than once, and only there does it "
        "differ from softmax over the union mask"), height=460)


def receptive_field_figure(fields: Mapping[str, object], layer: int, *, caption: str | None = None) -> go.Figure:
    """Tokens whose information reaches the last token after ``layer`` layers, for each pattern.

    ``fields[name]`` is a (layers + 1, L) boolean array (``postlib.sparse.receptive_field``). Top: the
    reached positions at this depth, one row of markers per pattern (trace ``i`` is ``fields``' i-th
    pattern, in the colour of its legend entry); bottom: how many tokens each pattern reaches
    against depth, the current depth marked. Same traces for every ``layer`` (a frames-ready builder).
    """
    items = [(name, np.asarray(f.detach().cpu().numpy() if hasattr(f, "detach") else f, dtype=bool))
             for name, f in fields.items()]
    if not items:
        raise ValueError("fields must not be empty")
    depth = items[0][1].shape[0] - 1
    if not 0 <= layer <= depth:
        raise ValueError(f"layer must be between 0 and {depth}, got {layer}")
    L = items[0][1].shape[1]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.45, 0.55], vertical_spacing=0.2,
                        subplot_titles=(f"reached after {layer} layer{'s' if layer != 1 else ''}",
                                        "tokens reached against depth"))
    styles = palette.series_styles([name for name, _ in items])
    positions = np.arange(L)
    for row, ((name, f), style) in enumerate(zip(items, styles)):
        # One row of square markers per pattern, in its legend colour (named by the legend below, not by
        # tick labels: a long name on the y axis would squeeze the panel on a phone).
        reached = positions[f[layer]]
        fig.add_trace(go.Scatter(x=reached, y=np.full(reached.shape, row), mode="markers", name=name,
                                 legendgroup=name, showlegend=False,
                                 marker=dict(symbol="square", size=7, color=style["color"], line=dict(width=0)),
                                 hovertemplate=name + ": token %{x} reached<extra></extra>"), row=1, col=1)
    for (name, f), style in zip(items, styles):
        sizes = f.sum(1)
        fig.add_trace(go.Scatter(x=np.arange(depth + 1), y=sizes, name=name, legendgroup=name, mode="lines+markers",
                                 line=dict(color=style["color"], dash=style.get("dash", "solid"))), row=2, col=1)
        fig.add_trace(go.Scatter(x=[layer], y=[int(sizes[layer])], mode="markers", showlegend=False,
                                 marker=dict(size=12, color=style["color"], symbol="circle-open"),
                                 hovertemplate=name + ": %{y} tokens after %{x} layers<extra></extra>"), row=2, col=1)
    fig.update_xaxes(range=[-0.5, L - 0.5], title="token position", showgrid=False, row=1, col=1)
    fig.update_yaxes(title="pattern", showgrid=False, showticklabels=False, range=[len(items) - 0.5, -0.5],
                     zeroline=False, row=1, col=1)
    fig.update_xaxes(range=[-0.2, depth + 0.2], title="layers k", dtick=1, row=2, col=1)
    fig.update_yaxes(type="log", range=[-0.1, math.log10(L) + 0.1], title="tokens reached", row=2, col=1)
    return finish(fig, "Receptive field, layer by layer", caption or caption_text(
        f"L = {L}; the receptive field of the last token: the tokens whose information reaches it through "
        f"k layers (boolean powers of the mask). Top: one row per pattern, in its legend colour, marking the "
        f"tokens reached at the current depth"), height=520)


@functools.lru_cache(maxsize=8)
def _reach(kind: str, length: int, layers: int, causal: bool, heads: int, compare: int | None, params: tuple):
    fields = {}
    if compare is not None:
        fields[f"window {compare}"] = receptive_field("sliding", length, layers=layers, causal=causal,
                                                      window=compare).numpy()
    extra = dict(params)
    if kind == "dilated" and heads > 1:
        extra.update(offset="per_head")
    fields["pattern"] = receptive_field(kind, length, layers=layers, causal=causal, heads=heads, **extra).numpy()
    return fields


def pattern_reach_figure(kind: str, length: int, layer: int, *, layers: int, causal: bool = False, heads: int = 1,
                         compare: int | None = None, name: str | None = None, caption: str | None = None,
                         **params) -> go.Figure:
    """:func:`receptive_field_figure` of the last token for one pattern given by its parameters, beside a
    sliding window of width ``compare`` (None: no comparison), at depth ``layer`` of ``layers``.

    LongNet (``kind="dilated"``) with ``heads`` > 1 uses per-head offsets 0 … heads − 1 (a token reads j
    when any head lets it). Same traces for every ``layer``: a Player or frames step through it.
    """
    check_positive_int(layers, "layers")
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
    fields = dict(_reach(kind, length, layers, bool(causal), heads, compare, key))
    fields[name or kind] = fields.pop("pattern")
    return receptive_field_figure(fields, layer, caption=caption)


def path_length_figure(rows: Iterable[Mapping], *, caption: str | None = None) -> go.Figure:
    """Longest shortest path (the attention graph's diameter, in layers) against sequence length, per variant.

    ``rows``: dicts with ``variant``, ``length``, ``diameter`` (``postlib.sparse.path_lengths``).
    """
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(str(r["variant"]), []).append((int(r["length"]), float(r["diameter"])))
    if not groups:
        raise ValueError("rows must not be empty")
    fig = go.Figure()
    for (name, pts), style in zip(groups.items(), palette.series_styles(list(groups))):
        pts.sort()
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=name, mode="lines+markers",
                                 line=dict(color=style["color"], dash=style.get("dash", "solid"))))
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title="diameter (layers)")
    return finish(fig, "How many layers connect any two tokens", caption or caption_text(
        "The diameter of the attention graph (edge j → i when i attends j): the most layers information needs "
        "between two tokens"))


def tile_fraction_figure(rows: Iterable[Mapping], *, caption: str | None = None) -> go.Figure:
    """Fraction of tiles computed against length, per pattern (``postlib.sparse.pattern_cost``, counted).

    ``rows``: dicts with ``pattern``, ``length``, ``tile_fraction``.
    """
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(str(r["pattern"]), []).append((int(r["length"]), float(r["tile_fraction"])))
    fig = go.Figure()
    lengths = sorted({L for pts in groups.values() for L, _ in pts})
    fig.add_trace(go.Scatter(x=lengths, y=[1.0] * len(lengths), name="dense (all tiles)", mode="lines",
                             line=dict(color=palette.NEUTRALS["context"], dash="dot")))
    for (name, pts), style in zip(groups.items(), palette.series_styles(list(groups))):
        pts.sort()
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=name, mode="lines+markers",
                                 line=dict(color=style["color"], dash=style.get("dash", "solid"))))
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title="fraction of tiles computed")
    return finish(fig, "Tiles computed, as a fraction of L²", caption or caption_text(
        "Counted from each pattern's tile layout (no attention is run): a fraction falling as 1/L means "
        "work linear in L"))


def sparse_cost_figure(doc: Mapping, *, caption: str | None = None) -> go.Figure:
    """Time and peak memory against length from a recorded ``sparse-attention`` experiment (log-log).

    ``doc``: the record (``postlib.bench.load_results("cpu_sparse_attention.json")``): ``rows``,
    ``fits``, ``provenance``, and ``crossover_vs_sdpa``.
    """
    rows = [r for r in doc["rows"] if r.get("status") == "ok"]
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward time", "peak memory (measured)"),
                        horizontal_spacing=0.14)
    fits = doc.get("fits", {})
    for name, style in zip(names, palette.series_styles(names)):
        pts = sorted((r["length"], r["time_ms"], r["peak_mem_bytes"]) for r in rows if r["name"] == name)
        fit = fits.get(name, {})
        label = name + (f" (L^{fit['time_ms']:.2f}, L^{fit['peak_mem_bytes']:.2f})" if fit else "")
        line = dict(color=style["color"], dash=style.get("dash", "solid"))
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=label, legendgroup=name,
                                 mode="lines+markers", line=line), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[2] / 2**20 for p in pts], name=label,
                                 legendgroup=name, showlegend=False, mode="lines+markers", line=line), row=1, col=2)
    cross = doc.get("crossover_vs_sdpa")
    if cross:
        fig.add_vline(x=cross, line=dict(color=palette.NEUTRALS["muted"], dash="dot"), row=1, col=1)
    for c, title in ((1, "time (ms)"), (2, "peak memory (MiB)")):
        fig.update_xaxes(type="log", title="sequence length L", row=1, col=c)
        fig.update_yaxes(type="log", title=title, row=1, col=c)
    first = rows[0] if rows else {}
    return finish(fig, "Sparse against dense attention, measured", caption or caption_text(
        f"Forward pass, causal, window {first.get('window')}, one head of {first.get('head_dim')}; legend: fitted "
        "exponents of time and memory",
        f"Dotted line: the sparse form gets faster than dense SDPA from L ≈ {cross:,.0f}" if cross else "",
        provenance_sentence(doc.get("provenance"))), legend="bottom", height=480)


def memory_formula_figure(kind: str, length: int, *, causal: bool = False, heads: int = 1, name: str | None = None,
                          caption: str | None = None, **params) -> go.Figure:
    """Bytes of one layer's attention scores at ``length``, **counted from the formula**, against dense.

    The count is ``postlib.sparse.analysis.pattern_memory`` (nothing is allocated, so it works at 10⁶
    tokens; BigBird's walks its block mask, at most ``MAX_FORMULA_BLOCKS`` blocks per side).
    """
    memory = pattern_memory(kind, length, causal=causal, heads=heads, **params)
    label = name or kind
    values = [memory["dense_bytes"], memory["pattern_bytes"]]
    colors = [palette.color("softmax"), palette.color("sparse")]
    fig = go.Figure(go.Bar(x=[max(v, 1) / 2**20 for v in values], y=["dense attention", label], orientation="h",
                           marker=dict(color=colors), text=[_bytes(v) for v in values], textposition="auto",
                           hovertemplate="%{y}: %{x:.3g} MiB<extra></extra>"))
    fig.update_xaxes(type="log", title="MiB of scores (counted)")
    fig.update_yaxes(autorange="reversed", title="attention")
    return finish(fig, "Scores held: the pattern against dense", caption or caption_text(
        f"L = {memory['length']:,}, {memory['heads']} head(s), 4 bytes per score, one layer{', causal' if causal else ''}; "
        f"counted from the formula, not measured. {label} keeps {memory['scores']:,} scores per head, "
        f"{100 * memory['fraction']:.3g}% of dense attention's {memory['dense_scores']:,}"), height=300)


def _bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"
