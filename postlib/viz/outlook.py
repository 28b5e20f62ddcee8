"""Figures of the outlook chapter (chapters/07_lab/outlook.md): roofline, long context, probes.

Pure builders: rows from ``postlib.outlook`` (or a recorded file) in, a plotly Figure out.
Colour names the *form* (materialised, loop, chunked, fused kernel: ``palette.color``), the
marker symbol names the *operation* (attention, linear attention, scan), so the same colour
means the same idea in every panel.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go

from . import palette
from .theme import caption_text, finish, provenance_sentence

# form -> the palette name of its colour
FORM_COLOR = {
    "softmax (materialised)": "softmax", "flash tiling (PyTorch loop)": "flash", "flash (fused kernel)": "triton",
    "linear attention (prefix sums)": "linear", "linear attention (chunked)": "chunked",
    "linear attention (fused kernel)": "triton", "scan (sequential loop)": "loop", "scan (chunked)": "chunked",
    "scan (fused kernel)": "triton", "matmul": "reference",
}
KIND_SYMBOL = {"attention": "circle", "linear": "square", "scan": "diamond", "matmul": "x"}


def _form_color(form: str) -> str:
    return palette.color(FORM_COLOR.get(form, "reference"))


def _roof_trace(x_lo, x_hi, peak, bandwidth, name, dash, showlegend=True):
    import numpy as np

    xs = np.geomspace(x_lo, x_hi, 60)
    ys = [min(peak if peak else float("inf"), x * bandwidth) / 1e9 for x in xs]
    return go.Scatter(x=xs, y=ys, mode="lines", name=name, showlegend=showlegend,
                      line=dict(color=palette.NEUTRALS["ink"], dash=dash, width=1.5),
                      hovertemplate=f"{name}<br>%{{x:.3g}} FLOP/B → %{{y:.3g}} GFLOP/s<extra></extra>")


def roofline_figure(rows: Sequence[dict], roofs: dict, *, gpu_rows: Sequence[dict] = (), gpu_roofs: dict | None = None,
                    provenance: dict | None = None, gpu_provenance: dict | None = None, title: str | None = None,
                    caption: str | None = None) -> go.Figure:
    """Log-log roofline: intensity (FLOP/byte, counted) against throughput (GFLOP/s, measured).

    ``rows``: ``postlib.outlook.roofline`` point rows (``form``, ``kind``, ``length``, ``intensity``,
    ``flops_per_s``); ``roofs``: ``{"peak_flops", "bandwidth"}`` measured on the same machine. GPU
    rows and roofs (from ``gpu_points``) are added as open markers and a dashed roof when given.
    """
    rows, gpu_rows = list(rows), list(gpu_rows)
    if not rows:
        raise ValueError("rows must hold at least one roofline point")
    for key in ("peak_flops", "bandwidth"):
        if not roofs or not roofs.get(key):
            raise ValueError(f"roofs must give {key!r} (measured), got {roofs!r}")
    all_i = [r["intensity"] for r in rows + gpu_rows]
    x_lo, x_hi = min(all_i) / 3, max(max(all_i) * 3, 3 * roofs["peak_flops"] / roofs["bandwidth"])
    fig = go.Figure()
    fig.add_trace(_roof_trace(x_lo, x_hi, roofs["peak_flops"], roofs["bandwidth"], "CPU roof", "solid"))
    for source, group, open_marker in (("CPU", rows, False), ("GPU", gpu_rows, True)):
        forms = list(dict.fromkeys(r["form"] for r in group))
        for form in forms:
            pts = [r for r in group if r["form"] == form]
            symbol = KIND_SYMBOL.get(pts[0]["kind"], "circle") + ("-open" if open_marker else "")
            fig.add_trace(go.Scatter(
                x=[r["intensity"] for r in pts], y=[r["flops_per_s"] / 1e9 for r in pts], mode="markers",
                name=f"{form}, {source}" if gpu_rows else form,
                marker=dict(color=_form_color(form), symbol=symbol, size=11, line=dict(width=1.5)),
                text=[f"L={r['length']}" for r in pts],
                hovertemplate=f"{form}<br>%{{text}}<br>%{{x:.3g}} FLOP/B<br>%{{y:.3g}} GFLOP/s<extra></extra>"))
    if gpu_roofs and gpu_roofs.get("bandwidth"):
        fig.add_trace(_roof_trace(x_lo, x_hi, gpu_roofs.get("peak_flops"), gpu_roofs["bandwidth"],
                                  "GPU memory roof", "dash"))
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOP per byte moved)")
    fig.update_yaxes(type="log", title_text="throughput (GFLOP/s)")
    ridge = roofs["peak_flops"] / roofs["bandwidth"]
    cap = caption or caption_text(
        "FLOPs and bytes counted from formulas (inputs read once, outputs written once, each materialised "
        "intermediate written and read once; a fused kernel keeps its tiles on chip)",
        f"CPU roof measured: peak {roofs['peak_flops'] / 1e9:.3g} GFLOP/s (fp32 matmul), bandwidth "
        f"{roofs['bandwidth'] / 1e9:.3g} GB/s (large copy), ridge at {ridge:.3g} FLOP/B",
        "Colour: the form; marker: attention (circle), linear attention (square), scan (diamond)",
        provenance_sentence(provenance),
        ("GPU points (open markers) from gpu_check.json. " + provenance_sentence(gpu_provenance)) if gpu_rows
        else "No GPU points: no gpu_check.json with timings is recorded")
    return finish(fig, title or "The roofline of our kernels", cap, height=480)


def traffic_figure(tables: dict[str, dict[str, int]], itemsize: int, *, shape_text: str = "",
                   title: str | None = None, caption: str | None = None) -> go.Figure:
    """Where the bytes go: one bar per form, the counted traffic in MiB (log axis), its largest part named.

    ``tables``: ``{form: postlib.outlook.roofline.traffic(form, shape)}`` (elements × touches). Bars,
    not stacks: on a log axis stacked segments would not add up visually.
    """
    if not tables:
        raise ValueError("tables must hold at least one form")
    forms = list(tables)
    totals = [sum(tables[f].values()) * itemsize / 2 ** 20 for f in forms]
    largest = [max(tables[f], key=tables[f].get) for f in forms]
    shares = [tables[f][g] / sum(tables[f].values()) for f, g in zip(forms, largest)]
    fig = go.Figure(go.Bar(
        y=forms, x=totals, orientation="h", marker_color=[_form_color(f) for f in forms], showlegend=False,
        text=[f"{100 * sh:.0f}% {g}" for g, sh in zip(largest, shares)], textposition="auto",
        hovertemplate="%{y}<br>%{x:.3g} MiB<br>%{text}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="memory traffic per call (MiB)")
    fig.update_yaxes(title_text="form", autorange="reversed")
    cap = caption or caption_text(
        f"Counted traffic per call{(' at ' + shape_text) if shape_text else ''}, {itemsize}-byte elements; "
        "the bar's text names the largest part of it",
        "Totals: " + "; ".join(f"{f} {v:.3g} MiB" for f, v in zip(forms, totals)))
    return finish(fig, title or "Where the bytes go", cap, height=140 + 50 * len(forms))
