"""Scaling plots: time or memory against sequence length, on log-log axes.

On log-log axes a power law ``y = c·L^p`` is a straight line of slope ``p``,
so the legend carries the fitted exponent (``postlib.bench.fit_exponent``):
≈1 for linear-time mixers, ≈2 for materialised attention. Input is the rows
that ``postlib.bench`` measures or ``load_results`` reads back.
"""
from __future__ import annotations

from typing import Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette
from .theme import caption_text, finish, provenance_sentence

METRICS = {
    "time_ms": ("time (ms)", 1.0),
    "peak_mem_bytes": ("peak memory (MiB)", 1.0 / 2**20),
}


def _check_metric(metric: str):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    return METRICS[metric]


def _series(rows: Iterable[dict], metric: str) -> dict[str, list[tuple[int, float]]]:
    """{label: [(length, value), ...]} over rows with status "ok"; the label adds the mode when there are several."""
    rows = [r for r in rows if str(r.get("status", "ok")) == "ok" and r.get(metric) not in (None, "")]
    modes = {r.get("mode") for r in rows}
    out: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        label = r["name"] if len(modes) <= 1 else f"{r['name']} ({r.get('mode')})"
        out.setdefault(label, []).append((int(r["length"]), float(r[metric])))
    return {k: sorted(v) for k, v in out.items()}


def _exponent(points: list[tuple[int, float]]) -> float | None:
    from ..bench.measure import fit_exponent

    pts = [(n, y) for n, y in points if y > 0]
    if len({n for n, _ in pts}) < 2:
        return None
    return fit_exponent([n for n, _ in pts], [y for _, y in pts])


def provenance_caption(provenance: dict | None) -> str:
    """One line: device, torch/triton versions, date (and load on a shared CPU); "" without provenance."""
    sentence = provenance_sentence(provenance)
    return sentence[len("Measured on "):-1] if sentence else ""


def _traces(rows, metric, fit, *, legendgroup_prefix="", showlegend=True, suffix=""):
    _, factor = _check_metric(metric)
    series = _series(rows, metric)
    # Colour by method (the row's name), dash by mode: softmax is softmax's blue in every figure.
    styles = dict(zip(series, palette.series_styles(list(series))))
    traces = []
    for label, points in series.items():
        p = _exponent(points) if fit else None
        name = f"{label}{suffix}" + (f"  ~L^{p:.2f}" if p is not None else "")
        traces.append(go.Scatter(
            x=[n for n, _ in points], y=[y * factor for _, y in points], mode="lines+markers", name=name,
            legendgroup=legendgroup_prefix + label, showlegend=showlegend, line=styles[label],
            hovertemplate=f"{label}<br>L=%{{x}}<br>%{{y:.4g}}<extra></extra>"))
    return traces


def scaling_figure(rows: Iterable[dict], metric: str = "time_ms", title: str | None = None, fit: bool = True,
                   provenance: dict | None = None, caption: str | None = None) -> go.Figure:
    """Log-log plot of ``metric`` against length, one trace per mixer (and mode).

    Args:
        rows: measurement rows (``postlib.bench`` ``ROW_KEYS``); rows whose status is
            not "ok" (skipped) are left out.
        metric: ``"time_ms"`` or ``"peak_mem_bytes"`` (plotted in MiB).
        title: a short headline (default: the metric against length).
        fit: put the fitted exponent ``~L^p`` in each legend entry.
        provenance: a ``postlib.bench.provenance`` dict, added to the caption.
        caption: the caption's first sentence (default: what is plotted).
    """
    rows = list(rows)
    ylabel, _ = _check_metric(metric)
    fig = go.Figure(_traces(rows, metric, fit))
    if not fig.data:
        raise ValueError(f"rows contain no measurement of {metric!r} with status 'ok' to plot")
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title=ylabel)
    default = (f"{ylabel[0].upper() + ylabel[1:]} against sequence length, log-log" +
               (": a power law c·L^p is a straight line, and the legend gives each fitted exponent p" if fit else ""))
    return finish(fig, title or f"{ylabel[0].upper() + ylabel[1:]} vs sequence length",
                  caption_text(caption or default, provenance_sentence(provenance)))


def memory_wall_figure(result: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Two panels, time and peak memory vs length, of a recorded memory-wall result.

    ``result`` is a dict as returned by ``postlib.bench.load_results`` (keys
    ``title``, ``rows``, ``provenance``, optional ``notes``); its title and provenance
    open and close the caption, so the reader sees which machine made the numbers.
    """
    if not isinstance(result, dict) or "rows" not in result:
        raise TypeError("result must be a dict with 'rows' (as returned by postlib.bench.load_results)")
    rows = result["rows"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward time", "peak memory (measured)"),
                        horizontal_spacing=0.12)
    for col, metric, suffix in ((1, "time_ms", " time"), (2, "peak_mem_bytes", " memory")):
        for trace in _traces(rows, metric, True, legendgroup_prefix=metric, suffix=suffix):
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(type="log", title="sequence length L", row=1, col=col)
        fig.update_yaxes(type="log", title=METRICS[metric][0], row=1, col=col)
    if not fig.data:
        raise ValueError("result rows contain no measurement with status 'ok' to plot")
    default = ("Forward time and measured peak memory against sequence length, log-log; the legend gives "
               "each fitted exponent p of c·L^p")
    return finish(fig, title or "The memory wall: time and memory vs length",
                  caption_text(result.get("title"), caption or default, provenance_sentence(result.get("provenance"))),
                  height=460, legend="bottom")
