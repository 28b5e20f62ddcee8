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

from .core import PALETTE, base_layout

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
    """One line: device, torch/triton versions, date (and load on a shared CPU)."""
    if not provenance:
        return ""
    parts = [str(provenance.get("device_name", provenance.get("device_type", "?")))]
    if provenance.get("capability"):
        parts[0] += f" (sm {provenance['capability']})"
    for key in ("torch", "triton"):
        if provenance.get(key):
            parts.append(f"{key} {provenance[key]}")
    if provenance.get("date"):
        parts.append(str(provenance["date"])[:10])
    if provenance.get("load_avg_1m_5m_15m"):
        parts.append(f"load {provenance['load_avg_1m_5m_15m'][0]}")
    return " · ".join(parts)


def _traces(rows, metric, fit, *, legendgroup_prefix="", showlegend=True, suffix=""):
    _, factor = _check_metric(metric)
    series = _series(rows, metric)
    traces = []
    for i, (label, points) in enumerate(series.items()):
        p = _exponent(points) if fit else None
        name = f"{label}{suffix}" + (f"  ~L^{p:.2f}" if p is not None else "")
        traces.append(go.Scatter(
            x=[n for n, _ in points], y=[y * factor for _, y in points], mode="lines+markers", name=name,
            legendgroup=legendgroup_prefix + label, showlegend=showlegend,
            line=dict(color=PALETTE[i % len(PALETTE)]),
            hovertemplate=f"{label}<br>L=%{{x}}<br>%{{y:.4g}}<extra></extra>"))
    return traces


def scaling_figure(rows: Iterable[dict], metric: str = "time_ms", title: str | None = None, fit: bool = True,
                   provenance: dict | None = None) -> go.Figure:
    """Log-log plot of ``metric`` against length, one trace per mixer (and mode).

    Args:
        rows: measurement rows (``postlib.bench`` ``ROW_KEYS``); rows whose status is
            not "ok" (skipped) are left out.
        metric: ``"time_ms"`` or ``"peak_mem_bytes"`` (plotted in MiB).
        fit: put the fitted exponent ``~L^p`` in each legend entry.
        provenance: a ``postlib.bench.provenance`` dict, shown as a subtitle.
    """
    rows = list(rows)
    ylabel, _ = _check_metric(metric)
    fig = go.Figure(_traces(rows, metric, fit))
    if not fig.data:
        raise ValueError(f"rows contain no measurement of {metric!r} with status 'ok' to plot")
    caption = provenance_caption(provenance)
    full_title = title or f"{ylabel} vs sequence length"
    if caption:
        full_title += f"<br><sup>{caption}</sup>"
    base_layout(fig, full_title)
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title=ylabel)
    return fig


def memory_wall_figure(result: dict) -> go.Figure:
    """Two panels, time and peak memory vs length, of a recorded memory-wall result.

    ``result`` is a dict as returned by ``postlib.bench.load_results`` (keys
    ``title``, ``rows``, ``provenance``, optional ``notes``); its provenance is
    the figure's caption, so the reader sees which machine made the numbers.
    """
    if not isinstance(result, dict) or "rows" not in result:
        raise TypeError("result must be a dict with 'rows' (as returned by postlib.bench.load_results)")
    rows = result["rows"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("forward time", "peak memory (measured)"),
                        horizontal_spacing=0.1)
    for col, metric, suffix in ((1, "time_ms", " time"), (2, "peak_mem_bytes", " memory")):
        for trace in _traces(rows, metric, True, legendgroup_prefix=metric, suffix=suffix):
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(type="log", title="sequence length L", row=1, col=col)
        fig.update_yaxes(type="log", title=METRICS[metric][0], row=1, col=col)
    if not fig.data:
        raise ValueError("result rows contain no measurement with status 'ok' to plot")
    base_layout(fig, result.get("title"), height=460)
    caption = provenance_caption(result.get("provenance"))
    if caption:
        fig.add_annotation(text=f"Measured on {caption}", xref="paper", yref="paper", x=0, y=-0.22,
                           showarrow=False, xanchor="left", font=dict(size=11, color="#555"))
    fig.update_layout(margin=dict(b=100), legend=dict(orientation="h", y=-0.32))
    return fig
