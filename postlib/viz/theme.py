"""The "postlib" plotly template and :func:`finish`, the last call of every builder.

A builder draws its traces with palette colours (:mod:`postlib.viz.palette`) and ends with
``return finish(fig, "Short headline", caption="Parameters, results, provenance.")``.
``finish`` applies the template and the rules every figure of the book follows:

* a short headline as title (left-aligned; the page's JavaScript wraps it to the screen);
* the caption text in ``fig.layout.meta["caption"]`` — parameters, results and provenance
  live there, never on an axis (the book prints it as the numbered caption);
* every log axis labelled at decades, or at a few round values when the data span less
  than two decades — never plotly's "2 3 4 5 6 7 8 9" minor labels (:func:`log_ticks`);
* legend and colorbars in their own space: a colorbar beside its heatmaps (side by side when
  several share the height), the legend right of the panels its traces are in, or in a band
  under the plot when panels stand side by side, when it is taller than its panels, or when
  a colorbar needs that side;
* a layout patch for screens narrower than 600 px in ``fig.layout.meta["narrow"]`` and the
  figure's own values of the same keys in ``fig.layout.meta["wide"]``
  (:func:`postlib.viz.responsive.responsive_meta`), applied by ``static/postlib-figures.js``.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from . import palette
from .responsive import axis as layout_axis
from .responsive import legend_items, legend_rows, responsive_meta, subplot_panels

TEMPLATE_NAME = "postlib"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
TITLE_SIZE = 16
WIDE_TITLE_CHARS = 80      # a longer title is wrapped (the JS rewraps it to the real width)
HEIGHT = 420
WIDE_LEGEND_PX = 640       # width a legend under the plot may fill on a desktop page
X_LABELS_PX = 56           # under the plot area: x tick labels and the x-axis title
COLORBAR_PAD, COLORBAR_COLUMN = 14, 90   # px right of the plot; px between side-by-side colour bars
COLORBAR_BAND_PX = 62      # a horizontal colour bar under the plot: title, bar, tick labels


def _axis_style() -> dict:
    return dict(showgrid=True, gridcolor=palette.NEUTRALS["grid"], gridwidth=1, zeroline=False,
                showline=True, linecolor=palette.NEUTRALS["context"], linewidth=1, ticks="outside",
                tickcolor=palette.NEUTRALS["context"], ticklen=4, automargin=True,
                title=dict(standoff=8, font=dict(size=13)), tickfont=dict(size=12))


def _colorbar_style() -> dict:
    return dict(thickness=12, outlinewidth=0, ticks="outside", ticklen=3, tickfont=dict(size=11),
                title=dict(font=dict(size=12), side="right"))


def build_template() -> go.layout.Template:
    """A restrained look (light grid, no boxes, one sans-serif stack, palette colours)."""
    layout = dict(
        font=dict(family=FONT, size=13, color=palette.NEUTRALS["ink"]),
        title=dict(x=0, xanchor="left", xref="paper", font=dict(size=TITLE_SIZE)),
        paper_bgcolor=palette.NEUTRALS["paper"], plot_bgcolor=palette.NEUTRALS["paper"],
        colorway=list(palette.SERIES),
        colorscale=dict(sequential=palette.SEQUENTIAL, diverging=palette.DIVERGING),
        xaxis=_axis_style(), yaxis=_axis_style(),
        legend=dict(bgcolor="rgba(255,255,255,0)", borderwidth=0, font=dict(size=12), tracegroupgap=4),
        coloraxis=dict(colorbar=_colorbar_style()),
        hoverlabel=dict(font=dict(family=FONT, size=12)),
        annotationdefaults=dict(font=dict(size=12, color=palette.NEUTRALS["ink"]), showarrow=False),
        shapedefaults=dict(line=dict(color=palette.NEUTRALS["muted"])),
        margin=dict(l=60, r=20, t=60, b=50),
        bargap=0.2,
    )
    data = dict(
        scatter=[go.Scatter(line=dict(width=2), marker=dict(size=6))],
        heatmap=[go.Heatmap(colorbar=_colorbar_style())],
        bar=[go.Bar(marker=dict(line=dict(width=0)))],
        histogram=[go.Histogram(marker=dict(line=dict(width=0)))],
    )
    return go.layout.Template(layout=layout, data=data)


def register_template() -> str:
    """Register the template as ``plotly.io.templates["postlib"]`` (idempotent); return its name."""
    if TEMPLATE_NAME not in pio.templates:
        pio.templates[TEMPLATE_NAME] = build_template()
    return TEMPLATE_NAME


# --------------------------------------------------------------------------- log axes

def _axis_values(fig: go.Figure, axis_key: str) -> list[float]:
    """Positive finite data values drawn on layout axis ``axis_key`` ("xaxis2", "yaxis" ...)."""
    letter = axis_key[0]
    ref = letter + axis_key[5:]                # "xaxis2" -> "x2"
    vals: list[float] = []
    for t in fig.data:
        if (getattr(t, letter + "axis", None) or letter) != ref:
            continue
        arr = getattr(t, letter, None)
        if arr is None:
            continue
        for v in np.asarray(arr, dtype=object).ravel():
            if isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0:
                vals.append(float(v))
    return vals


def log_ticks(lo: float, hi: float, values=()) -> list[float]:
    """Tick values for a log axis from ``lo`` to ``hi``: the decades when there are at least two,
    else powers of two (when every value is one, as with sequence lengths) or 1-2-5 values."""
    if not (lo > 0 and hi >= lo):
        raise ValueError(f"log axis range must be positive and increasing, got ({lo}, {hi})")
    eps = 1e-9
    decades = [10.0 ** k for k in range(math.floor(math.log10(lo) - eps), math.ceil(math.log10(hi) + eps) + 1)
               if lo * (1 - 1e-6) <= 10.0 ** k <= hi * (1 + 1e-6)]
    if len(decades) >= 2:
        return decades
    values = [v for v in values if v > 0]
    if values and all(_is_power_of_two(v) for v in values):
        cands = [2.0 ** k for k in range(math.floor(math.log2(lo)), math.ceil(math.log2(hi)) + 1)
                 if lo * (1 - 1e-6) <= 2.0 ** k <= hi * (1 + 1e-6)]
    else:
        cands = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in (1, 2, 5) if lo * (1 - 1e-6) <= m * 10.0 ** k <= hi * (1 + 1e-6)]
    while len(cands) > 6:
        cands = cands[::2]
    return cands or sorted({lo, hi})


def tick_label(v: float) -> str:
    """Compact, exact labels: 1k, 10k, 1M for decades; 1024, 16384 for powers of two; 0.01 or 10⁻⁵ for small ones."""
    if v >= 1000 and float(v).is_integer() and 10 ** round(math.log10(v)) != v:
        if v < 100000:
            return str(int(v))
        if _is_power_of_two(v):                    # sequence lengths: 128K, 1M (binary, as papers write them)
            return f"{v / 2 ** 20:g}M" if v >= 2 ** 20 else f"{v / 2 ** 10:g}K"
    if v >= 1000:
        for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= div:
                return f"{v / div:g}{unit}"
    if v >= 1e-3:
        return f"{v:g}"
    exp = math.floor(math.log10(v) + 1e-9)
    mant = v / 10.0 ** exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"10{sup}" if abs(mant - 1) < 1e-9 else f"{mant:g}×10{sup}"


def _is_power_of_two(v: float) -> bool:
    return v > 0 and abs(math.log2(v) - round(math.log2(v))) < 1e-9


def label_log_axes(fig: go.Figure) -> go.Figure:
    """Give every log axis explicit decade (or round) tick values and labels."""
    for key in _axis_keys(fig):
        axis = layout_axis(fig, key)
        if axis.type != "log":
            continue
        vals = _axis_values(fig, key)
        if axis.range is not None:
            lo, hi = 10.0 ** min(axis.range), 10.0 ** max(axis.range)
        elif vals:
            lo, hi = min(vals), max(vals)
        else:
            continue
        ticks = log_ticks(lo, hi, vals)
        axis.update(tickmode="array", tickvals=ticks, ticktext=[tick_label(v) for v in ticks],
                    minor=dict(ticks="outside", ticklen=3, dtick="D1", tickcolor=palette.NEUTRALS["context"], showgrid=False))
    return fig


def _axis_keys(fig: go.Figure) -> list[str]:
    """Layout keys of every cartesian axis a trace uses or the layout defines."""
    keys = {k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))}
    for t in fig.data:
        for letter in "xy":
            ref = getattr(t, letter + "axis", None)
            if ref is not None or hasattr(t, letter + "axis"):
                keys.add(letter + "axis" + (ref or letter)[1:])
    return sorted(keys)


# --------------------------------------------------------------------------- legend and colorbars

def _panels_of(fig: go.Figure, panels: dict, traces) -> tuple[tuple[float, float], tuple[float, float]]:
    """The x and y paper spans of the panels ``traces`` are drawn in ((0, 1), (0, 1) when none)."""
    used = [panels[p] for p in {(t.xaxis or "x", t.yaxis or "y") for t in traces} if p in panels]
    if not used:
        return (0.0, 1.0), (0.0, 1.0)
    return ((min(p["x"][0] for p in used), max(p["x"][1] for p in used)),
            (min(p["y"][0] for p in used), max(p["y"][1] for p in used)))


def _add_bottom_band(fig: go.Figure, px: int) -> None:
    """Room under the plot: the margin and the figure grow together, so the plot keeps its height."""
    fig.update_layout(margin=dict(b=(fig.layout.margin.b or 50) + px), height=fig.layout.height + px)


def _place_legend_and_colorbars(fig: go.Figure, legend: str | None) -> None:
    items = legend_items(fig)
    colorbars = _colorbar_axes(fig)
    fig.update_layout(showlegend=bool(items))
    panels = subplot_panels(fig)
    spans = {name: _panels_of(fig, panels, [t for t in fig.data if getattr(t, "coloraxis", None) == name])
             for name in colorbars}
    legend_y = _panels_of(fig, panels, items)[1]
    beside = [y for _, y in spans.values()]
    shares_side = any(not (legend_y[0] >= hi - 1e-9 or legend_y[1] <= lo + 1e-9) for lo, hi in beside)
    side_by_side = len({p["x"] for p in panels.values()}) > 1      # panels in columns need the width
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    below = X_LABELS_PX                                            # px under the plot taken so far
    if side_by_side and len(colorbars) > 1:
        # Several bars beside a row of panels would eat its width: each goes under its own panels.
        for name, ((x0, x1), _) in spans.items():
            fig.layout[name].colorbar.update(orientation="h", x=(x0 + x1) / 2, xanchor="center", len=x1 - x0,
                                             lenmode="fraction", y=-(below + 4) / plot_h, yanchor="top",
                                             thickness=10, title=dict(side="top"))
        _add_bottom_band(fig, COLORBAR_BAND_PX)
        below += COLORBAR_BAND_PX
    else:
        placed: list[tuple[float, float]] = []
        for name, (_, (lo, hi)) in spans.items():
            # Colour bars beside the same panels stand side by side, each in its own 90 px column.
            column = sum(1 for a, b in placed if not (lo >= b - 1e-9 or hi <= a + 1e-9))
            placed.append((lo, hi))
            fig.layout[name].colorbar.update(x=1.0, xanchor="left", xpad=COLORBAR_PAD + COLORBAR_COLUMN * column,
                                             y=(lo + hi) / 2, yanchor="middle", len=max(hi - lo, 0.3),
                                             lenmode="fraction")
    if not items:
        return
    too_tall = 21 * len(items) > (legend_y[1] - legend_y[0]) * plot_h   # it would scroll beside the plot
    if legend == "bottom" or (legend is None and (side_by_side or too_tall or (colorbars and shares_side))):
        # Under the x-axis titles (and any colour bars), in a band of its own.
        fig.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=-below / plot_h, yanchor="top",
                                      yref="paper", xref="paper", maxheight=legend_band_px(fig) + 20))
        _add_bottom_band(fig, legend_band_px(fig))
    else:
        fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=legend_y[1], yanchor="top"))


def legend_band_px(fig: go.Figure) -> int:
    """Height of a horizontal legend under the plot on a desktop page."""
    return 26 * legend_rows(fig, WIDE_LEGEND_PX) + 10


def bottom_bands_px(fig: go.Figure) -> int:
    """How far under the plot area the x labels, bottom colour bars and bottom legend reach (px)."""
    margin = fig.layout.margin
    plot_h = (fig.layout.height or HEIGHT) - (margin.t or 60) - (margin.b or 50)
    reach = X_LABELS_PX
    if fig.layout.showlegend and fig.layout.legend.orientation == "h" and fig.layout.legend.y is not None:
        reach = max(reach, -fig.layout.legend.y * plot_h + legend_band_px(fig))
    for name in _colorbar_axes(fig):
        bar = fig.layout[name].colorbar
        if bar.orientation == "h" and bar.y is not None:
            reach = max(reach, -bar.y * plot_h + COLORBAR_BAND_PX)
    return int(round(reach))


def _colorbar_axes(fig: go.Figure) -> list[str]:
    """Names of the layout coloraxes that show a colorbar and that some trace uses."""
    used = {getattr(t, "coloraxis", None) for t in fig.data} - {None}
    return sorted(n for n in used if fig.layout[n].showscale is not False)


def coloraxis(fig: go.Figure, name: str = "coloraxis", *, colorscale=palette.SEQUENTIAL, title: str = "",
              cmin=None, cmax=None, cmid=None, showscale: bool = True) -> str:
    """Define a layout colour axis (one colorbar shared by the heatmaps that name it); return its name.

    Colour bars live in the layout, not on traces, so the responsive patch can move them.
    """
    if colorscale not in palette.COLORSCALES:
        raise ValueError(f"colorscale must be one of {palette.COLORSCALES}, got {colorscale!r}")
    fig.layout[name] = dict(colorscale=colorscale, cmin=cmin, cmax=cmax, cmid=cmid, showscale=showscale,
                            colorbar=dict(title=dict(text=title)))
    return name


# --------------------------------------------------------------------------- finish

def wrap_title(text: str, width: int = WIDE_TITLE_CHARS) -> str:
    """Break a title into lines of at most ``width`` characters with ``<br>`` (plotly's line break)."""
    plain = " ".join(str(text).replace("<br>", " ").split())
    return "<br>".join(textwrap.wrap(plain, width)) if len(plain) > width else plain


def caption_text(*parts) -> str:
    """Join caption sentences, skipping empty ones; each part ends with a full stop."""
    out = []
    for p in parts:
        p = " ".join(str(p).split()) if p else ""
        if p:
            out.append(p if p[-1] in ".!?" else p + ".")
    return " ".join(out)


def finish(fig: go.Figure, title: str | None = None, caption: str | None = None, *, height: int | None = None,
           legend: str | None = None, margin: dict | None = None) -> go.Figure:
    """Apply the book's style to a built figure, store its caption and narrow patch; return ``fig``.

    Args:
        title: a short headline (parameters and results go in ``caption``).
        caption: plain text for ``fig.layout.meta["caption"]`` (the book numbers and prints it).
        height: figure height in px on a wide screen (default 420).
        legend: ``"bottom"`` to put the legend under the plot, ``"right"`` beside it; default:
            under the plot when panels stand side by side or a colorbar needs the space, else right.
    """
    if legend not in (None, "bottom", "right"):
        raise ValueError(f"legend must be None, 'bottom' or 'right', got {legend!r}")
    _attach_template(fig)
    text = wrap_title(title) if title is not None else fig.layout.title.text
    lines = text.count("<br>") + 1 if text else 0
    top = 20 + 24 * lines + (24 if _has_top_annotation(fig) else 0)
    # one update for all three: each update_layout call costs plotly a validation pass
    fig.update_layout(height=height or fig.layout.height or HEIGHT, margin=dict(l=60, r=20, t=max(top, 30), b=50),
                      **({"title": dict(text=text)} if title is not None else {}))
    if margin:
        fig.update_layout(margin=margin)
    label_log_axes(fig)
    for key in _axis_keys(fig):       # a square panel that leaves height over hugs its subplot title
        axis = layout_axis(fig, key)
        if key.startswith("yaxis") and axis.scaleanchor and axis.constrain == "domain" and not axis.constraintoward:
            axis.constraintoward = "top"
    _place_legend_and_colorbars(fig, legend)
    meta = dict(fig.layout.meta or {}) if isinstance(fig.layout.meta, dict) else {}
    meta["caption"] = caption if caption is not None else meta.get("caption", "")
    meta.update(responsive_meta(fig))
    fig.layout.meta = meta
    return fig


def _attach_template(fig: go.Figure) -> None:
    """``fig.layout.template = "postlib"``, without validating the registered template again.

    By name, plotly deep-copies and re-validates the whole template on every figure (~9 ms of a
    ~45 ms figure build); the registered template is valid already, so this copies it with
    validation off, as plotly itself does when it applies its default template (identical JSON;
    tests/viz/test_theme_template.py)."""
    template = pio.templates[register_template()]
    layout = fig.layout
    layout._validate = False
    try:
        layout.template = template
    finally:
        layout._validate = fig._validate


def _has_top_annotation(fig: go.Figure) -> bool:
    """True when a subplot title sits at the top edge of the plot area (it needs room above)."""
    return any(a.yref == "paper" and a.y is not None and a.y >= 0.999 and a.yanchor == "bottom"
               for a in fig.layout.annotations)


def get_caption(fig: go.Figure) -> str:
    """The caption a builder stored (``""`` when none)."""
    meta = fig.layout.meta
    return meta.get("caption", "") if isinstance(meta, dict) else ""


def provenance_sentence(provenance: dict | None) -> str:
    """"Measured on <device>, torch x, triton y, <date>, load z." (empty without provenance)."""
    if not provenance:
        return ""
    device = str(provenance.get("device_name", provenance.get("device_type", "an unnamed device")))
    if provenance.get("capability"):
        device += f" (sm {provenance['capability']})"
    parts = [device]
    for key in ("torch", "triton"):
        if provenance.get(key):
            parts.append(f"{key} {provenance[key]}")
    if provenance.get("date"):
        parts.append(str(provenance["date"])[:10])
    if provenance.get("load_avg_1m_5m_15m"):
        parts.append(f"load {provenance['load_avg_1m_5m_15m'][0]}")
    return "Measured on " + ", ".join(parts) + "."
