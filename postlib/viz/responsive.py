"""The narrow-screen layout patch of a figure (``fig.layout.meta["narrow"]``).

Below about 600 px a figure cannot keep its legend and colorbar on the right or its panels
side by side: the plot area would shrink to a sliver. :func:`narrow_patch` computes, from
the finished wide layout, a plotly *relayout* patch (``{"attribute.path": value}``) that

* stacks the subplots in one column (row by row, left to right), each panel sized for a
  phone (square heatmaps stay square), moving each subplot title with its panel;
* puts the colorbars (horizontal), then the legend (horizontal), then the slider and the
  play buttons under the plot, each in its own band, so nothing overlaps;
* shrinks the margins and fonts a little (a y axis of long names more: :func:`long_category_axes`)
  and sets the height the stacked layout needs.

:func:`responsive_meta` stores it in ``fig.layout.meta`` as ``"narrow"``, beside ``"wide"`` (the
figure's own values of the same keys) and ``"narrow_below"`` (600 px, more when panels stand side
by side and would get cramped: :func:`narrow_below`). ``static/postlib-figures.js`` applies the
patch on load and on resize to every plotly div narrower than that, hides the toolbar, fits the
title to the width, and restores the wide layout on a wider screen. Pixel sizes below are
estimates for a ~340 px wide figure; the browser test checks them at 390 px.
"""
from __future__ import annotations

import textwrap

import plotly.graph_objects as go

NARROW_PX = 600            # the JavaScript switches below this width (keep in sync with postlib-figures.js)
ASSUMED_WIDTH = 340        # figure width the estimates below are made for (a small phone, minus page padding)
TITLE_CHARS = 36           # characters per title line at that width (the JS refits to the real width)
MARGIN = dict(l=52, r=14)
LEGENDABLE = {"scatter", "scattergl", "bar", "histogram", "box", "violin"}


def axis(fig: go.Figure, key: str):
    """``fig.layout[key]`` ("xaxis2" ...), defined empty first when a trace uses an axis the layout lacks."""
    try:
        return fig.layout[key]
    except KeyError:
        fig.layout[key] = {}
        return fig.layout[key]


def subplot_panels(fig: go.Figure) -> dict:
    """``{(xref, yref): {"x": (x0, x1), "y": (y0, y1), "xaxis", "yaxis", "square"}}`` for each panel in use."""
    pairs = {(t.xaxis or "x", t.yaxis or "y") for t in fig.data if hasattr(t, "xaxis")}
    if not pairs:
        pairs = {("x", "y")}
    panels = {}
    for xref, yref in pairs:
        xkey, ykey = "xaxis" + xref[1:], "yaxis" + yref[1:]
        xa, ya = axis(fig, xkey), axis(fig, ykey)
        panels[(xref, yref)] = dict(x=tuple(xa.domain or (0.0, 1.0)), y=tuple(ya.domain or (0.0, 1.0)),
                                    xaxis=xkey, yaxis=ykey,
                                    square=bool(ya.scaleanchor == xref or xa.scaleanchor == yref))
    return panels


def legend_items(fig: go.Figure) -> list:
    """Traces that put an entry in the legend (named, legend-able, not hidden)."""
    cands = [t for t in fig.data if t.type in LEGENDABLE and t.showlegend is not False and t.name]
    explicit = [t for t in cands if t.showlegend is True]
    if fig.layout.showlegend is False:
        return []
    return cands if (len(cands) > 1 or explicit) else []


def _subplot_titles(fig: go.Figure, panels: dict) -> dict:
    """Index of the annotation that titles each panel (make_subplots puts them at the panel's top centre)."""
    found = {}
    for i, a in enumerate(fig.layout.annotations):
        if a.xref != "paper" or a.yref != "paper" or a.yanchor != "bottom" or a.x is None or a.y is None:
            continue
        for key, p in panels.items():
            if abs(a.x - (p["x"][0] + p["x"][1]) / 2) < 1e-6 and abs(a.y - p["y"][1]) < 1e-6:
                found[key] = i
    return found


def _x_labels_px(fig: go.Figure, panel: dict) -> int:
    """Height below a panel taken by its x tick labels and x title."""
    xa = axis(fig, panel["xaxis"])
    if xa.visible is False:
        return 0
    px = 30 if xa.showticklabels is not False else 6
    return px + (26 if xa.title.text else 0)


def legend_rows(fig: go.Figure, width: float = ASSUMED_WIDTH - MARGIN["l"] - MARGIN["r"]) -> int:
    """Rows of a horizontal legend ``width`` px wide: one row if every entry fits, else (as plotly
    does) a grid whose columns are as wide as the widest entry."""
    widths = [50 + 6.8 * len(str(t.name)) for t in legend_items(fig)]
    if not widths or sum(widths) <= width:
        return 1
    per_row = max(1, int(width // max(widths)))
    return -(-len(widths) // per_row)


CATEGORY_TICK_PX = 10      # tick font of a y axis of names on a phone (12 elsewhere)
LONG_CATEGORY = 8          # characters: names longer than this take the plot's width on a phone


def long_category_axes(fig: go.Figure) -> list[str]:
    """The y axes ("yaxis", "yaxis2", ...) whose ticks are names longer than ``LONG_CATEGORY``
    characters (a dot plot over mixers, say): on a phone their labels, not the data, would take
    the width, so the narrow layout sets them in a smaller font."""
    found = []
    for t in fig.data:
        ys = getattr(t, "y", None) if t.type in LEGENDABLE else None
        if ys is None:
            continue
        if any(isinstance(y, str) and len(y) > LONG_CATEGORY for y in ys):
            key = "yaxis" + (t.yaxis or "y")[1:]
            if key not in found:
                found.append(key)
    return found


def narrow_title(text: str | None) -> str | None:
    if not text:
        return text
    plain = " ".join(str(text).replace("<br>", " ").split())
    return "<br>".join(textwrap.wrap(plain, TITLE_CHARS))


def narrow_patch(fig: go.Figure) -> dict:
    """The relayout patch for a screen narrower than ``NARROW_PX`` (see the module docstring)."""
    patch: dict = {}
    panels = subplot_panels(fig)
    order = sorted(panels, key=lambda k: (-panels[k]["y"][1], panels[k]["x"][0]))
    titles = _subplot_titles(fig, panels)
    height = fig.layout.height or 420
    margin = fig.layout.margin
    wide_plot_h = height - (margin.t or 60) - (margin.b or 50)
    stack = len({panels[k]["x"] for k in order}) > 1

    # Stacked panel heights (px) and the gaps between them, top to bottom.
    sizes, gaps = [], []
    for i, key in enumerate(order):
        p = panels[key]
        if p["square"]:
            h = ASSUMED_WIDTH - MARGIN["l"] - MARGIN["r"] - 10
        else:
            frac = p["y"][1] - p["y"][0]
            h = min(max(frac * wide_plot_h * (0.75 if not stack else 1.0), 120 if not stack else 170), 300)
        sizes.append(h)
        if i:
            above = panels[order[i - 1]]
            gaps.append(_x_labels_px(fig, above) + (28 if key in titles else 0) + 16)
    plot_h = sum(sizes) + sum(gaps)

    # Bands under the plot: x labels of the last panel, colorbars, legend, slider + buttons.
    bands_px = _x_labels_px(fig, panels[order[-1]]) + 20
    colorbars = sorted({t.coloraxis for t in fig.data if getattr(t, "coloraxis", None)
                        and fig.layout[t.coloraxis].showscale is not False})
    for name in colorbars:
        patch[f"{name}.colorbar.orientation"] = "h"
        patch[f"{name}.colorbar.x"] = 0.5
        patch[f"{name}.colorbar.xpad"] = 10
        patch[f"{name}.colorbar.xanchor"] = "center"
        patch[f"{name}.colorbar.len"] = 1.0
        patch[f"{name}.colorbar.lenmode"] = "fraction"
        patch[f"{name}.colorbar.thickness"] = 10
        patch[f"{name}.colorbar.title.side"] = "top"
        patch[f"{name}.colorbar.y"] = -bands_px / plot_h
        patch[f"{name}.colorbar.yanchor"] = "top"
        patch[f"{name}.colorbar.yref"] = "paper"
        bands_px += 66
    if legend_items(fig):
        band = 26 * legend_rows(fig) + 16
        patch.update({"legend.orientation": "h", "legend.x": 0, "legend.xanchor": "left", "legend.xref": "paper",
                      "legend.y": -bands_px / plot_h, "legend.yanchor": "top", "legend.yref": "paper",
                      "legend.font.size": 11, "legend.maxheight": band + 20})     # px: all of it, no scrolling
        bands_px += band
    if fig.layout.sliders:
        y = -bands_px / plot_h
        steps = len(fig.layout.sliders[0].steps)
        longest = max((len(str(s.label)) for s in fig.layout.sliders[0].steps), default=1)
        patch.update({"sliders[0].x": 0, "sliders[0].len": 1.0, "sliders[0].y": y, "sliders[0].yanchor": "top",
                      "sliders[0].pad.t": 0, "sliders[0].pad.l": 0, "sliders[0].pad.r": 0,
                      "sliders[0].currentvalue.font.size": 12})
        rail_px = ASSUMED_WIDTH - MARGIN["l"] - MARGIN["r"]
        if steps * (7 * longest + 6) > rail_px:      # labels would collide: the current value shows it
            patch["sliders[0].font.color"] = "rgba(0,0,0,0)"
        if fig.layout.updatemenus:
            patch.update({"updatemenus[0].x": 0, "updatemenus[0].xanchor": "left", "updatemenus[0].y": y,
                          "updatemenus[0].yanchor": "top", "updatemenus[0].pad.t": 0, "updatemenus[0].pad.l": 0})
            patch["sliders[0].pad.l"] = 78
        bands_px += 92
    # Room at the top: the title (wrapped for a phone) and the first panel's subplot title.
    title = narrow_title(fig.layout.title.text)
    title_lines = title.count("<br>") + 1 if title else 0
    top = 16 + 22 * title_lines + (28 if order[0] in titles else 0)
    if title:
        patch["title.text"] = title
        patch["title.font.size"] = 15

    # Domains of the stacked panels, measured from the top of the plot area.
    # Every panel's domain, a lone one too: plotly rewrites the domain of a square heatmap as it draws.
    y_top = plot_h
    for i, key in enumerate(order):
        if i:
            y_top -= gaps[i - 1]
        y0, y1 = (y_top - sizes[i]) / plot_h, y_top / plot_h
        y_top -= sizes[i]
        p = panels[key]
        patch[f"{p['xaxis']}.domain"] = [0.0, 1.0] if stack else list(p["x"])
        patch[f"{p['yaxis']}.domain"] = [max(0.0, round(y0, 5)), min(1.0, round(y1, 5))]
        if key in titles:
            j = titles[key]
            patch[f"annotations[{j}].x"] = 0.5 if stack else fig.layout.annotations[j].x
            patch[f"annotations[{j}].y"] = min(1.0, round(y1, 5))
            patch[f"annotations[{j}].font.size"] = 13
    for j, a in enumerate(fig.layout.annotations):
        if j in titles.values():
            continue
        if a.font.size is None:
            patch[f"annotations[{j}].font.size"] = 11
    for key in long_category_axes(fig):
        patch[f"{key}.tickfont.size"] = CATEGORY_TICK_PX
    patch.update({"margin.l": MARGIN["l"], "margin.r": MARGIN["r"], "margin.t": top, "margin.b": round(bands_px),
                  "height": round(top + plot_h + bands_px), "font.size": 12})
    return patch


def _get(fig: go.Figure, path: str):
    """The layout value at a relayout path such as "annotations[2].font.size" (None when unset)."""
    obj = fig.layout
    for part in path.split("."):
        name, *idx = part.replace("]", "").split("[")
        try:
            obj = obj[name]
            for i in idx:
                obj = obj[int(i)]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        if obj is None:
            return None
    if hasattr(obj, "to_plotly_json"):
        return obj.to_plotly_json()
    return list(obj) if isinstance(obj, tuple) else obj


MIN_PANEL_PX = 150         # narrowest plot area a panel may have in the wide layout
MIN_GAP_PX = 66            # between side-by-side panels: the right one's y tick labels and y title
TITLE_CHAR_PX = 8.6        # a subplot title's glyph width at 16 px


def narrow_below(fig: go.Figure) -> int:
    """The width (px) below which the figure takes its narrow layout: 600, or more when its panels stand
    side by side and would get narrower than ``MIN_PANEL_PX`` (or their gaps and titles too tight)."""
    panels = subplot_panels(fig)
    columns = sorted({p["x"] for p in panels.values()})
    if len(columns) < 2:
        return NARROW_PX
    titles = _subplot_titles(fig, panels)
    need = [MIN_PANEL_PX / (b - a) for a, b in columns]
    need += [MIN_GAP_PX / (c[0] - p[1]) for p, c in zip(columns, columns[1:]) if c[0] > p[1]]
    for key, j in titles.items():
        a, b = panels[key]["x"]
        pitch = (b - a) + min([c[0] - b for c in columns if c[0] > b] + [1 - b + 0.05])
        need.append(TITLE_CHAR_PX * len(str(fig.layout.annotations[j].text)) / pitch)
    margin = fig.layout.margin
    extras = (margin.l or 60) + (margin.r or 20)
    colorbars = [n for n in {getattr(t, "coloraxis", None) for t in fig.data} - {None}
                 if fig.layout[n].showscale is not False]
    extras += 90 * sum(1 for n in colorbars if fig.layout[n].colorbar.orientation != "h")
    if fig.layout.showlegend and fig.layout.legend.orientation == "v":
        extras += 50 + 6.8 * max(len(str(t.name)) for t in legend_items(fig))
    return max(NARROW_PX, int(round(max(need) + extras, -1)))


def responsive_meta(fig: go.Figure) -> dict:
    """``{"narrow": patch, "wide": the same keys' values in the figure's own layout, "narrow_below": px}``.

    The script applies "narrow" below ``narrow_below`` px (600, or more for panels side by side) and
    restores "wide" above it: plotly rewrites some layout values while drawing (the domain of a
    square heatmap, for one), so the originals travel with the figure.
    """
    patch = narrow_patch(fig)
    return {"narrow": patch, "wide": {key: _get(fig, key) for key in patch}, "narrow_below": narrow_below(fig)}
