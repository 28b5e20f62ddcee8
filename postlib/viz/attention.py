"""Figures for chapter 1 and the dashboard's Attention page.

Pure builders, sizes or data in → ``go.Figure`` out:

* :func:`attention_map` — the softmax weight matrix of random or positional q/k;
* :func:`cost_curves` — FLOPs and memory of materialised vs tiled attention,
  *counted from the formula* (``postlib.attention.derive.attention_costs``);
* :func:`flash_tiles_step` / :func:`flash_tiles_figure` — FlashAttention's
  tile-by-tile online softmax, one frame per merged K/V tile, computed with the
  library's ``online_softmax_update`` (:func:`flash_tiles_data`);
* :func:`kv_cache_figure` — *measured* per-token decode time with and without a KV cache.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .._checks import check_choice, check_positive_int
from ..attention.derive import attention_costs
from ..attention.flash import online_softmax_update
from ..attention.softmax import attention_weights, causal_mask, softmax_attention
from . import palette
from .core import frames_figure
from .theme import caption_text, coloraxis, finish, provenance_sentence

PATTERNS = ("random", "positional")
# "positional" q = k = gain·PE: with gain 1 the peak score is only √d/2 (about 2 for d = 16),
# too flat to see; a gain of 2 stands in for a learned projection that amplifies position.
POSITION_GAIN = 2.0


def _sinusoidal(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s sinusoidal position code, (length, dim), as float64."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    code = torch.zeros(length, dim, dtype=torch.float64)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return code


def _queries_keys(length: int, head_dim: int, seed: int, pattern: str):
    if pattern == "positional":
        # q = k = position code: q_i·k_j = Σ cos(ω(i−j)) peaks at i = j, and the
        # peak grows with head_dim (more frequencies agree), so the map sharpens.
        code = POSITION_GAIN * _sinusoidal(length, head_dim)
        return code[None, None], code[None, None]
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 1, length, head_dim, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 1, length, head_dim, generator=gen, dtype=torch.float64)
    return q, k


def attention_map(length: int, head_dim: int, causal: bool = False, seed: int = 0,
                  pattern: str = "random") -> go.Figure:
    """Heatmap of softmax(QKᵀ/√d) for one head: row i is query i's distribution over keys.

    ``pattern="random"``: q, k ~ N(0, 1); the 1/√d scale keeps the scores' variance
    at 1 for every ``head_dim``. ``"positional"``: q = k = sinusoidal position
    codes (times ``POSITION_GAIN``), which gives a local (near-diagonal) pattern
    that sharpens as ``head_dim`` grows.
    """
    check_positive_int(length, "length")
    check_positive_int(head_dim, "head_dim")
    check_choice(pattern, "pattern", PATTERNS)
    q, k = _queries_keys(length, head_dim, seed, pattern)
    weights = attention_weights(q, k, causal=causal)[0, 0].numpy()
    entropy = -(weights * np.log(np.where(weights > 0, weights, 1.0))).sum(-1).mean()
    # The most a row can spread: uniform over the keys it may see (i + 1 of them when causal).
    visible = np.arange(1, length + 1) if causal else np.full(length, length)
    uniform = float(np.log(visible).mean())
    fig = go.Figure(go.Heatmap(z=weights, coloraxis="coloraxis",
                               hovertemplate="query %{y}, key %{x}: %{z:.3f}<extra></extra>"))
    coloraxis(fig, title="weight", cmin=0)
    fig.update_xaxes(title="key position j", constrain="domain")
    fig.update_yaxes(title="query position i", autorange="reversed", scaleanchor="x", constrain="domain")
    caption = caption_text(
        f"Softmax attention weights softmax(QKᵀ/√d) of one head: L = {length}, d = {head_dim}, "
        f"{pattern} queries and keys{', causal mask' if causal else ''}",
        "Row i is query i's distribution over the keys",
        f"Mean row entropy {entropy:.2f} nats (uniform over the visible keys: {uniform:.2f})")
    return finish(fig, "Softmax attention weights", caption, height=460)


def cost_curves(lengths, head_dim: int, *, current_length: int | None = None, block_size: int = 64,
                batch: int = 1, heads: int = 1, bytes_per_element: int = 4) -> go.Figure:
    """FLOPs and peak memory of one attention call vs L: materialised vs tiled (FlashAttention).

    These are **counts from the formula** (``attention_costs``), not measurements:
    same FLOPs (the tiled form adds one rescale per tile), but memory O(L²) vs O(L).
    ``current_length`` (default: the largest length) is marked on both panels.
    """
    lengths = sorted({check_positive_int(int(n), "lengths") for n in lengths})
    if not lengths:
        raise ValueError("lengths must contain at least one length")
    current = lengths[-1] if current_length is None else check_positive_int(current_length, "current_length")
    costs = [attention_costs(n, head_dim, batch=batch, heads=heads, block_size=block_size,
                             bytes_per_element=bytes_per_element) for n in lengths]
    now = attention_costs(current, head_dim, batch=batch, heads=heads, block_size=block_size,
                          bytes_per_element=bytes_per_element)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward FLOPs", "peak memory"), horizontal_spacing=0.14)
    styles = {"materialised": dict(color=palette.color("softmax")), "tiled": dict(color=palette.color("flash"), dash="dash")}
    names = {"materialised": "materialised (S, P in memory)", "tiled": f"tiled ({block_size}-key tiles)"}
    for col, metric in ((1, "flops"), (2, "bytes")):
        for form in ("materialised", "tiled"):
            fig.add_trace(go.Scatter(x=lengths, y=[c[f"{metric}_{form}"] for c in costs], mode="lines",
                                     name=names[form], legendgroup=form, showlegend=col == 1, line=styles[form]),
                          row=1, col=col)
        fig.add_trace(go.Scatter(x=[current, current], y=[now[f"{metric}_materialised"], now[f"{metric}_tiled"]],
                                 mode="markers", marker=dict(size=10, color=palette.NEUTRALS["ink"], symbol="diamond"),
                                 name=f"L = {current}", legendgroup="now", showlegend=col == 1), row=1, col=col)
    ratio = now["bytes_materialised"] / now["bytes_tiled"]
    verdict = (f"tiling needs {ratio:.1f}× less memory" if ratio >= 1 else
               f"tiling saves nothing yet ({1 / ratio:.2f}× the memory: one tile already spans L)")
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title="FLOPs (matmuls)", row=1, col=1)
    fig.update_yaxes(type="log", title="bytes", row=1, col=2)
    caption = caption_text(
        f"Counted from the formula, not measured: one attention call, d = {head_dim}, batch·heads = "
        f"{batch * heads}, {bytes_per_element}-byte floats",
        "Same FLOPs (tiling adds one rescale per tile), but memory O(L²) against O(L)",
        f"At L = {current} {verdict}")
    return finish(fig, "Attention cost: materialised vs tiled", caption, height=420)


# --------------------------------------------------------------------------- FlashAttention tiles

@lru_cache(maxsize=16)
def flash_tiles_data(length: int, block_size: int, causal: bool = False, seed: int = 0,
                     head_dim: int = 8) -> dict:
    """Per-tile state of the online softmax for one head (float64), for figures and players.

    Returns ``{"scores": (L, L), "exact": (L, d), "m_final", "l_final": (L,), "steps": [...]}``
    where step k (k = 1 … n_tiles) holds ``start``, ``end`` (keys merged in that
    step), and the running ``m``, ``l`` and partial output ``acc / l`` after it.
    Each step is one call of ``postlib.attention.flash.online_softmax_update``.
    The arrays are shared by the cache: read them, do not modify them.
    """
    check_positive_int(length, "length")
    check_positive_int(block_size, "block_size")
    check_positive_int(head_dim, "head_dim")
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(length, head_dim, generator=gen, dtype=torch.float64) for _ in range(3))
    scores = q @ k.T / math.sqrt(head_dim)
    if causal:
        scores = scores.masked_fill(~causal_mask(length, length), float("-inf"))
    m = torch.full((length,), float("-inf"), dtype=torch.float64)
    l = torch.zeros(length, dtype=torch.float64)
    acc = torch.zeros(length, head_dim, dtype=torch.float64)
    steps = []
    for start in range(0, length, block_size):
        end = min(start + block_size, length)
        m, l, acc = online_softmax_update(m, l, acc, scores[:, start:end], v[start:end])
        with np.errstate(invalid="ignore", divide="ignore"):
            partial = (acc / l[:, None]).numpy()  # NaN for causal rows that have seen no key yet
        steps.append(dict(start=start, end=end, m=m.numpy().copy(), l=l.numpy().copy(), partial=partial))
    exact = softmax_attention(q[None, None], k[None, None], v[None, None], causal=causal)[0, 0].numpy()
    return {"scores": scores.numpy(), "exact": exact, "m_final": m.numpy(), "l_final": l.numpy(),
            "steps": steps, "head_dim": head_dim}


def n_tiles(length: int, block_size: int) -> int:
    """Number of K/V tiles (and animation steps) for ``length`` keys in tiles of ``block_size``."""
    return math.ceil(check_positive_int(length, "length") / check_positive_int(block_size, "block_size"))


def _finite(a: np.ndarray) -> list:
    return [float(x) if np.isfinite(x) else None for x in a]


def _span(*arrays, pad: float = 0.08) -> list[float]:
    vals = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    margin = pad * (hi - lo or 1.0)
    return [lo - margin, hi + margin]


def flash_tiles_step(length: int, block_size: int, step: int, causal: bool = False, seed: int = 0,
                     head_dim: int = 8) -> go.Figure:
    """The online softmax after ``step`` K/V tiles (1 ≤ step ≤ n_tiles) have been merged.

    Four panels: the scores seen so far (current tile outlined), the running max
    m per query row, the running denominator l (relative to m), and output
    channel 0 of the partial output acc/l against the exact attention output.
    Always 7 traces and fixed axis ranges, so frames animate in place.
    """
    data = flash_tiles_data(length, block_size, causal, seed, head_dim)
    total = len(data["steps"])
    check_positive_int(step, "step")
    if step > total:
        raise ValueError(f"step must be between 1 and n_tiles = {total} (length {length}, block_size {block_size}), "
                         f"got {step}")
    st = data["steps"][step - 1]
    rows = np.arange(length)
    seen = np.full_like(data["scores"], np.nan)
    seen[:, : st["end"]] = data["scores"][:, : st["end"]]
    seen[~np.isfinite(seen)] = np.nan  # masked (future) keys are blank, not -inf
    err = np.nanmax(np.abs(st["partial"] - data["exact"])) if np.isfinite(st["partial"]).any() else float("nan")

    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.2, horizontal_spacing=0.12, subplot_titles=(
        "scores merged so far", "running max m", "running sum l = Σ exp(s − m)", "output channel 0"))
    finite_scores = data["scores"][np.isfinite(data["scores"])]
    fig.add_trace(go.Heatmap(z=seen, zmin=float(finite_scores.min()), zmax=float(finite_scores.max()),
                             colorscale=palette.DIVERGING, showscale=False,
                             hovertemplate="query %{y}, key %{x}: %{z:.2f}<extra></extra>"), row=1, col=1)
    final = dict(color=palette.NEUTRALS["context"], dash="dot")
    lines = [
        (rows, data["m_final"], "final m, l (all keys)", final, "lines", 1, 2, True),
        (rows, st["m"], "running m", dict(color=palette.SERIES[3]), "lines+markers", 1, 2, True),
        (rows, data["l_final"], "final l", final, "lines", 2, 1, False),
        (rows, st["l"], "running l", dict(color=palette.SERIES[0]), "lines+markers", 2, 1, True),
        (rows, data["exact"][:, 0], "exact output", dict(color=palette.NEUTRALS["ink"], dash="dot"), "lines", 2, 2,
         True),
        (rows, st["partial"][:, 0], "partial acc/l", dict(color=palette.SERIES[2]), "lines+markers", 2, 2, True),
    ]
    for x, y, name, line, mode, r, c, shown in lines:
        fig.add_trace(go.Scatter(x=x, y=_finite(y), name=name, mode=mode, line=line, marker=dict(size=4),
                                 showlegend=shown, legendgroup="final" if line is final else name),
                      row=r, col=c)
    fig.add_shape(type="rect", x0=st["start"] - 0.5, x1=st["end"] - 0.5, y0=-0.5, y1=length - 0.5,
                  line=dict(color=palette.NEUTRALS["ink"], width=3), xref="x", yref="y")
    fig.update_xaxes(range=[-0.5, length - 0.5], title="key j", row=1, col=1)
    fig.update_yaxes(range=[length - 0.5, -0.5], title="query i", row=1, col=1)
    for r, c in ((1, 2), (2, 1), (2, 2)):
        fig.update_xaxes(range=[-0.5, length - 0.5], title="query row i", row=r, col=c)
    all_m = [s["m"] for s in data["steps"]]
    all_l = [s["l"] for s in data["steps"]]
    all_o = [s["partial"][:, 0] for s in data["steps"]] + [data["exact"][:, 0]]
    fig.update_yaxes(range=_span(*all_m), title="m", row=1, col=2)
    fig.update_yaxes(range=_span(*all_l), title="l", row=2, col=1)
    fig.update_yaxes(range=_span(*all_o), title="acc/l", row=2, col=2)
    title = f"Tile {step}/{total}: keys {st['start']}–{st['end'] - 1} merged, max error {err:.0e}"
    caption = caption_text(
        f"FlashAttention's online softmax over L = {length} keys in tiles of {block_size}"
        f"{' with a causal mask' if causal else ''}; each tile is one call of online_softmax_update",
        "Top left: the scores merged so far, the current tile outlined. Top right and bottom left: the "
        "running max m and sum l per query row (dotted: their final values). Bottom right: output channel 0 "
        "of the partial output acc/l against the exact attention output, which it equals after the last tile",
        "The title gives the largest |acc/l − exact| over all outputs")
    return finish(fig, title, caption, height=640)


def flash_tiles_figure(length: int, block_size: int, causal: bool = False, seed: int = 0,
                       head_dim: int = 8, duration_ms: int = 700) -> go.Figure:
    """All tiles as one animated figure (slider + play button; works in a static page).

    Built from :func:`flash_tiles_step`, the same builder the dashboard's player steps.
    """
    return frames_figure(flash_tiles_step, "step", range(1, n_tiles(length, block_size) + 1), label="tiles merged",
                         duration_ms=duration_ms, length=length, block_size=block_size, causal=causal, seed=seed,
                         head_dim=head_dim)


# --------------------------------------------------------------------------- KV cache

def kv_cache_figure(rows, *, cached: str = "KV cache", recompute: str = "recompute",
                    title: str | None = None, caption: str | None = None,
                    provenance: dict | None = None) -> go.Figure:
    """Measured time to generate one token vs context length, with and without a KV cache.

    ``rows`` are ``postlib.bench.measure_functions`` rows (keys name, length,
    time_ms, status); ``cached`` and ``recompute`` name the two series, which may
    cover different lengths (the cache reaches much longer contexts). Left: ms
    per token; right: how many times slower recomputing is, where both were measured.
    Both panels share the x axis. ``provenance`` (a ``postlib.bench.provenance`` dict)
    goes into the caption.
    """
    ok = [r for r in rows if str(r.get("status", "ok")) == "ok"]
    series = {}
    for r in ok:
        series.setdefault(r["name"], {})[int(r["length"])] = float(r["time_ms"])
    for name, arg in ((cached, "cached"), (recompute, "recompute")):
        if name not in series:
            raise ValueError(f"{arg}={name!r} names no measured series; rows have names {sorted(series)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("time per token", "recompute ÷ KV cache"),
                        horizontal_spacing=0.14)
    styles = palette.series_styles([cached, recompute, "slowdown"])
    for name, style in zip((cached, recompute), styles):
        xs = sorted(series[name])
        fig.add_trace(go.Scatter(x=xs, y=[series[name][x] for x in xs], mode="lines+markers", name=name,
                                 line=style), row=1, col=1)
    common = sorted(set(series[cached]) & set(series[recompute]))
    ratio = [series[recompute][x] / series[cached][x] for x in common]
    fig.add_trace(go.Scatter(x=common, y=ratio, mode="lines+markers", name="slowdown without cache",
                             line=styles[2]), row=1, col=2)
    # Log-log: the cached step (O(t)) and recomputation (O(t²)) differ by orders of magnitude.
    every = sorted(set(series[cached]) | set(series[recompute]))
    span = [math.log10(every[0]) - 0.1, math.log10(every[-1]) + 0.1]
    fig.update_xaxes(type="log", title="context length t (tokens)", range=span)
    fig.update_yaxes(type="log", title="ms per token", row=1, col=1)
    fig.update_yaxes(type="log", title="slowdown (×)", row=1, col=2)
    default = (f"Measured time to generate one token after t tokens: with a KV cache (one query against the cached "
               f"keys and values) and recomputing the whole prefix. Right: how many times slower recomputing is, "
               f"where both were measured ({common[0]}–{common[-1]} tokens: {ratio[0]:.1f}× to {ratio[-1]:.1f}×)"
               if common else "Measured time to generate one token after t tokens, with and without a KV cache")
    return finish(fig, title or "Decoding one token: KV cache vs recompute",
                  caption_text(caption or default, provenance_sentence(provenance)), height=400)
