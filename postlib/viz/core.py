"""Animations as plotly frames: one builder, many values, one figure with a slider and a play button.

Every builder in ``postlib.viz`` is a pure function, data in → ``go.Figure`` out, so the
chapters (static HTML), live notebooks (ipywidgets) and the Panel dashboard all draw with the
same code. :func:`frames_figure` is what makes a chapter's "Try it" work in a static page:
no kernel, just precomputed frames.
"""
from __future__ import annotations

from typing import Callable, Iterable

import plotly.graph_objects as go

from . import palette
from .responsive import responsive_meta
from .theme import bottom_bands_px, get_caption

CONTROLS_PX = 100          # height of the slider band (current value, rail, step labels)
BUTTONS_PX = 78            # room left of the rail for the ▶ and ❚❚ buttons
WIDE_RAIL_PX = 640         # rail length assumed when deciding whether step labels fit


def frames_figure(builder: Callable[..., go.Figure], name: str, values: Iterable, *, label: str | None = None,
                  play: bool = True, duration_ms: int = 400, initial: int | str = "last",
                  caption: str | None = None, **fixed) -> go.Figure:
    """Precompute ``builder(**{name: v}, **fixed)`` for each value and join them into one
    figure whose slider (and play button) steps through the frames.

    Every call of the builder must return the same number and kinds of traces, so the
    frames can animate them in place. The figure opens on frame ``initial`` ("last" by
    default: the most informative state of a process, e.g. the whole signal seen; an int
    picks a frame). ▶ plays every frame from the first; ❚❚ pauses. The controls sit in
    their own band under the plot, the buttons left of the slider, never over its label.
    The caption is ``caption`` or the builder's caption (so builders that are animated
    write captions that hold for every frame).
    """
    values = list(values)
    if not values:
        raise ValueError(f"values for {name!r} must not be empty")
    if initial == "last":
        start = len(values) - 1
    elif isinstance(initial, int) and not isinstance(initial, bool) and -len(values) <= initial < len(values):
        start = initial % len(values)
    else:
        raise ValueError(f"initial must be 'last' or a frame index in [0, {len(values)}), got {initial!r}")
    figs = [builder(**{name: v}, **fixed) for v in values]
    n_traces = {len(f.data) for f in figs}
    if len(n_traces) != 1:
        raise ValueError(f"builder returned a different number of traces across {name} values: {sorted(n_traces)}")
    fig = go.Figure(data=figs[start].data, layout=figs[start].layout)
    fig.frames = [go.Frame(data=f.data, name=str(i), layout=_frame_layout(f)) for i, f in enumerate(figs)]
    label = label or name
    steps = [dict(method="animate", label=_fmt(v),
                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
             for i, v in enumerate(values)]
    gap = bottom_bands_px(fig) + 2           # the controls' band starts under x labels, colour bars, legend
    longest = max(len(s["label"]) for s in steps)
    crowded = len(steps) * (7 * longest + 6) > WIDE_RAIL_PX - (BUTTONS_PX if play else 0)
    slider = dict(active=start, steps=steps, x=0, len=1, y=0, yanchor="top", xanchor="left",
                  pad=dict(t=gap, l=BUTTONS_PX if play else 0, r=0, b=0),
                  currentvalue=dict(prefix=f"{label} = ", xanchor="right", font=dict(size=13, color=palette.NEUTRALS["ink"])),
                  font=dict(size=11, color="rgba(0,0,0,0)" if crowded else None), ticklen=3)
    fig.update_layout(sliders=[slider])
    if play:
        fig.update_layout(updatemenus=[dict(
            type="buttons", showactive=False, direction="left", x=0, xanchor="left", y=0, yanchor="top",
            pad=dict(t=gap + 22, l=0, r=0, b=0),
            buttons=[dict(label="▶", method="animate",
                          args=[None, dict(frame=dict(duration=duration_ms, redraw=True), fromcurrent=False,
                                           transition=dict(duration=0), mode="immediate")]),
                     dict(label="❚❚", method="animate",
                          args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])])
    margin = fig.layout.margin
    fig.update_layout(margin=dict(b=(margin.b or 50) + CONTROLS_PX))
    fig.update_layout(height=(fig.layout.height or 420) + CONTROLS_PX)
    meta = dict(fig.layout.meta) if isinstance(fig.layout.meta, dict) else {}
    meta["caption"] = caption if caption is not None else get_caption(figs[start])
    meta.update(responsive_meta(fig))
    fig.layout.meta = meta
    return fig


def _frame_layout(f: go.Figure) -> dict:
    """What a frame changes in the layout: texts, shapes and colour ranges. Never a position: the
    narrow patch may have moved annotations and colorbars, and a frame must not move them back."""
    layout = dict(title=dict(text=f.layout.title.text), annotations=[dict(text=a.text) for a in f.layout.annotations],
                  shapes=f.layout.shapes)
    for key in (k for k in f.layout.to_plotly_json() if k.startswith("coloraxis")):
        axis = f.layout[key]
        layout[key] = dict(cmin=axis.cmin, cmax=axis.cmax, cmid=axis.cmid)
    return layout


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
