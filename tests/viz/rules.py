"""The figure rules, as pure-Python checks on a built figure (no browser).

Each check returns a list of problems (empty: the figure follows the rule), so a test can
report every broken rule of every figure at once. ``test_figure_rules.py`` runs them over
the catalogue; ``test_figures_browser.py`` adds what only a browser can see (overlaps, fit).
"""
from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from postlib.viz import palette
from postlib.viz.theme import TEMPLATE_NAME

MAX_TITLE_CHARS = 60


def _scales() -> list:
    return [go.Heatmap(colorscale=name).colorscale for name in palette.COLORSCALES]


def used_axes(fig: go.Figure) -> list[str]:
    keys = set()
    for t in fig.data:
        if hasattr(t, "xaxis"):
            keys.add("xaxis" + (t.xaxis or "x")[1:])
            keys.add("yaxis" + (t.yaxis or "y")[1:])
    return sorted(keys)


def check_template_and_caption(fig: go.Figure) -> list[str]:
    problems = []
    if fig.layout.template != pio.templates[TEMPLATE_NAME]:
        problems.append("the figure does not use the 'postlib' template (end the builder with finish())")
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    caption = meta.get("caption")
    if not isinstance(caption, str) or len(caption) < 20:
        problems.append(f"layout.meta['caption'] must hold the caption text, got {caption!r}")
    elif re.search(r"<\s*/?\s*[a-zA-Z][^<>]*>", caption):
        problems.append(f"the caption is plain text, no HTML tags: {caption!r}")
    narrow = meta.get("narrow")
    if not isinstance(narrow, dict) or not narrow:
        problems.append("layout.meta['narrow'] must hold the narrow-screen patch")
    else:
        trial = go.Figure(fig)
        for key, value in narrow.items():
            try:
                trial.layout[key] = value
            except (ValueError, KeyError, TypeError) as err:
                problems.append(f"narrow patch key {key!r} is not a valid layout attribute: {err}")
    title = (fig.layout.title.text or "").replace("<br>", " ")
    if not title:
        problems.append("the figure has no title (a short headline)")
    elif len(title) > MAX_TITLE_CHARS:
        problems.append(f"title is {len(title)} characters, more than {MAX_TITLE_CHARS}: move parameters and "
                        f"results into the caption: {title!r}")
    for word in ("Measured on", "torch ", "triton "):
        if word in title or any(word in (a.text or "") for a in fig.layout.annotations):
            problems.append(f"provenance ({word.strip()!r}) belongs in the caption, not in the title or on the plot")
    return problems


def check_axis_titles(fig: go.Figure) -> list[str]:
    problems = []
    for key in used_axes(fig):
        try:
            axis = fig.layout[key]
        except KeyError:
            problems.append(f"{key} has no title")
            continue
        if axis.visible is False or axis.title.text:
            continue
        # A shared x axis of stacked panels shows its title once, under the bottom panel.
        if axis.matches and axis.showticklabels is False:
            continue
        problems.append(f"{key} has no title")
    return problems


def _axis_data(fig, key):
    letter, ref = key[0], key[0] + key[5:]
    vals = []
    for t in fig.data:
        if (getattr(t, letter + "axis", None) or letter) == ref and getattr(t, letter, None) is not None:
            vals += [float(v) for v in np.asarray(getattr(t, letter), dtype=object).ravel()
                     if isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0]
    return vals


def check_log_axes(fig: go.Figure) -> list[str]:
    """Log axes carry explicit ticks: the decades when the data span two or more, never plotly's minor labels."""
    problems = []
    for key in used_axes(fig):
        try:
            axis = fig.layout[key]
        except KeyError:
            continue
        if axis.type != "log":
            continue
        if axis.tickmode != "array" or not axis.tickvals:
            problems.append(f"{key} is logarithmic without explicit tick values (plotly would label 2 3 4 … 9)")
            continue
        vals = _axis_data(fig, key)
        if axis.range is not None:
            vals = [10 ** min(axis.range), 10 ** max(axis.range)]
        if not vals:
            continue
        decades = [k for k in range(math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals))) + 1)
                   if min(vals) * (1 - 1e-6) <= 10 ** k <= max(vals) * (1 + 1e-6)]
        if len(decades) >= 2:
            off = [v for v in axis.tickvals if abs(math.log10(v) - round(math.log10(v))) > 1e-9]
            if off:
                problems.append(f"{key} spans {len(decades)} decades but labels {off} (decades only)")
        if axis.ticktext and len(axis.ticktext) != len(axis.tickvals):
            problems.append(f"{key} has {len(axis.tickvals)} tick values but {len(axis.ticktext)} labels")
    return problems


def _colors(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, np.ndarray)) and all(isinstance(v, str) for v in value):
        return list(value)
    return []                                      # numeric colour arrays map through a colour scale


def check_colors(fig: go.Figure) -> list[str]:
    """Every colour comes from the palette; a trace named after a method wears that method's colour."""
    problems = []
    scales = _scales()
    for i, t in enumerate(fig.data):
        found = []
        line = getattr(t, "line", None)
        marker = getattr(t, "marker", None)
        if line is not None and hasattr(line, "color"):
            found += _colors(line.color)
        if marker is not None:
            found += _colors(marker.color)
            if getattr(marker, "line", None) is not None:
                found += _colors(marker.line.color)
        for c in found:
            if not palette.is_palette_color(c):
                problems.append(f"trace {i} ({t.name!r}) uses {c!r}, which is not a palette colour")
        if t.type in ("scatter", "bar", "histogram") and not found:
            problems.append(f"trace {i} ({t.name!r}) has no explicit colour (take one from postlib.viz.palette)")
        name = palette.resolve(t.name) if t.name else None
        if name is not None and found and found[0].lower() != palette.color(name).lower():
            problems.append(f"trace {i} is named {t.name!r} ({name}) but drawn in {found[0]}, "
                            f"not {name}'s colour {palette.color(name)}")
        if getattr(t, "colorscale", None) is not None and t.colorscale not in scales:
            problems.append(f"trace {i} uses a colour scale outside the palette's {palette.COLORSCALES}")
        if t.type in ("heatmap", "contour") and t.coloraxis is None and t.showscale is not False:
            problems.append(f"trace {i} draws its own colorbar: use postlib.viz.coloraxis() so the layout can move it")
    for key in (k for k in fig.layout.to_plotly_json() if k.startswith("coloraxis")):
        if fig.layout[key].colorscale not in scales:
            problems.append(f"{key} uses a colour scale outside the palette's {palette.COLORSCALES}")
    for j, shape in enumerate(fig.layout.shapes):
        for c in _colors(shape.line.color) + _colors(shape.fillcolor):
            if not palette.is_palette_color(c):
                problems.append(f"shape {j} uses {c!r}, which is not a palette colour")
    return problems


def _same(a, b) -> bool:
    try:
        return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)
    except (TypeError, ValueError):
        return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))


def check_animation(fig: go.Figure) -> list[str]:
    """A framed figure opens on the frame its slider shows, and that frame is not empty."""
    if not fig.frames:
        return []
    problems = []
    if not fig.layout.sliders:
        return ["an animated figure needs a slider"]
    active = fig.layout.sliders[0].active or 0
    frame = fig.frames[active]
    for i, (shown, framed) in enumerate(zip(fig.data, frame.data)):
        for attr in ("x", "y", "z"):
            a, b = getattr(shown, attr, None), getattr(framed, attr, None)
            if a is not None and b is not None and not _same(a, b):
                problems.append(f"trace {i}: the figure opens on other data than its active frame {active}")
    for i, t in enumerate(fig.data):
        z = getattr(t, "z", None)
        if z is not None:
            arr = np.asarray(z, dtype=float)
            if np.isfinite(arr).mean() < 0.5:
                problems.append(f"trace {i}: the opening frame shows a mostly empty heatmap "
                                f"({np.isfinite(arr).mean():.0%} of cells drawn)")
    if fig.layout.updatemenus:
        play = fig.layout.updatemenus[0]
        if not (play.xanchor == "left" and fig.layout.sliders[0].pad.l and fig.layout.sliders[0].pad.l >= 60):
            problems.append("the play buttons must sit left of the slider's rail (slider pad.l ≥ 60 px)")
        if fig.layout.sliders[0].currentvalue.xanchor != "right":
            problems.append("the slider's current value must be right-aligned, away from the buttons")
    return problems


ALL_CHECKS = (check_template_and_caption, check_axis_titles, check_log_axes, check_colors, check_animation)


def problems(fig: go.Figure) -> list[str]:
    return [p for check in ALL_CHECKS for p in check(fig)]
