"""Geometry checks on a figure measured in the browser (``figure_page.MEASURE``): pure functions.

Boxes are ``{"kind", "label", "x0", "y0", "x1", "y1"}`` in px relative to the figure's div.
"""
from __future__ import annotations

from itertools import combinations

MIN_PLOT_WIDTH = 200       # px, on a 390 px phone
SLACK = 1.0                # px of overlap or overhang tolerated (anti-aliasing, rounding)

SLIDER = {"slider-value", "slider-rail", "slider-label"}
# Kinds that must not overlap each other (unordered pairs).
_CLASHES = {
    "legend": {"legend", "colorbar", "title", "annotation", "axis-title", "ticklabel", "plot", "button"} | SLIDER,
    "colorbar": {"colorbar", "title", "annotation", "axis-title", "ticklabel", "plot", "button"} | SLIDER,
    "title": {"annotation", "axis-title", "ticklabel", "plot", "button"} | SLIDER,
    "annotation": {"annotation", "axis-title", "ticklabel", "button"} | SLIDER,
    "axis-title": {"axis-title", "ticklabel", "plot", "button"} | SLIDER,
    "ticklabel": {"ticklabel", "button"} | SLIDER,
    "button": {"slider-value", "slider-label", "slider-rail"},
    "slider-value": {"slider-label"},
}
INSIDE = {"legend", "colorbar", "title", "annotation", "axis-title", "ticklabel", "button"} | SLIDER


def clashes(a: str, b: str) -> bool:
    return b in _CLASHES.get(a, ()) or a in _CLASHES.get(b, ())


def overlap(a: dict, b: dict) -> float:
    """The smaller side of the intersection of two boxes (px), 0 when they only touch."""
    w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
    h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
    return max(0.0, min(w, h))


def _name(box: dict) -> str:
    return f"{box['kind']} {box['label']!r}" if box["label"] and box["label"] != box["kind"] else box["kind"]


def overlaps(m: dict) -> list[str]:
    out = []
    for a, b in combinations(m["boxes"], 2):
        if clashes(a["kind"], b["kind"]) and overlap(a, b) > SLACK:
            out.append(f"{_name(a)} overlaps {_name(b)} by {overlap(a, b):.0f} px")
    return out


def outside(m: dict) -> list[str]:
    out = []
    for b in m["boxes"]:
        if b["kind"] in INSIDE and (b["x0"] < -SLACK or b["y0"] < -SLACK or b["x1"] > m["width"] + SLACK
                                    or b["y1"] > m["height"] + SLACK):
            out.append(f"{_name(b)} is cut off: box ({b['x0']:.0f}, {b['y0']:.0f})–({b['x1']:.0f}, {b['y1']:.0f}) "
                       f"in a {m['width']:.0f}×{m['height']:.0f} figure")
    return out


def narrow_problems(m: dict) -> list[str]:
    out = []
    if m["mode"] != "narrow":
        out.append(f"postlib-figures.js did not switch to the narrow layout (data-postlib-layout={m['mode']!r})")
    for b in m["boxes"]:
        if b["kind"] == "plot" and b["x1"] - b["x0"] < MIN_PLOT_WIDTH:
            out.append(f"a plot area is {b['x1'] - b['x0']:.0f} px wide, less than {MIN_PLOT_WIDTH}")
    if m["modebarVisible"]:
        out.append("the toolbar is visible on a phone")
    if m["scrollWidth"] > m["viewport"] + SLACK:
        out.append(f"the page scrolls sideways ({m['scrollWidth']} px of content in a {m['viewport']} px screen)")
    return out


def wide_problems(m: dict) -> list[str]:
    return [] if m["mode"] == "wide" else [f"expected the wide layout, got {m['mode']!r}"]


def problems(m: dict, narrow: bool) -> list[str]:
    return overlaps(m) + outside(m) + (narrow_problems(m) if narrow else wide_problems(m))
