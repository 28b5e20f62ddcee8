"""Figure plumbing shared by every topic module: theme, frames, sliders.

Every builder in ``postlib.viz`` is a pure function, data in → ``go.Figure``
out, so the chapters (static HTML), live notebooks (ipywidgets) and the Panel
dashboard all draw with the same code.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import plotly.graph_objects as go

# One palette for the whole book so a mixer keeps its colour across chapters.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f"]


def color_for(name: str, names: Sequence[str] | None = None) -> str:
    """A stable colour for a mixer or series name."""
    if names is not None and name in names:
        return PALETTE[list(names).index(name) % len(PALETTE)]
    return PALETTE[sum(map(ord, name)) % len(PALETTE)]


def base_layout(fig: go.Figure, title: str | None = None, height: int = 420, **kw) -> go.Figure:
    fig.update_layout(title=title, height=height, template="plotly_white",
                      margin=dict(l=60, r=20, t=60 if title else 30, b=50), **kw)
    return fig


def frames_figure(builder: Callable[..., go.Figure], name: str, values: Iterable, *, label: str | None = None,
                  play: bool = True, duration_ms: int = 400, **fixed) -> go.Figure:
    """Precompute ``builder(**{name: v}, **fixed)`` for each value and join them into one
    figure whose slider (and play button) steps through the frames.

    This is what makes a chapter's "Try it" work in a static page: no kernel,
    just plotly frames. Every call of the builder must return the same number
    and kinds of traces, so the frames can animate them in place.
    """
    values = list(values)
    if not values:
        raise ValueError(f"values for {name!r} must not be empty")
    figs = [builder(**{name: v}, **fixed) for v in values]
    n_traces = {len(f.data) for f in figs}
    if len(n_traces) != 1:
        raise ValueError(f"builder returned a different number of traces across {name} values: {sorted(n_traces)}")
    fig = go.Figure(data=figs[0].data, layout=figs[0].layout)
    fig.frames = [go.Frame(data=f.data, name=str(i), layout=dict(title=f.layout.title, annotations=f.layout.annotations,
                                                                 shapes=f.layout.shapes))
                  for i, f in enumerate(figs)]
    label = label or name
    steps = [dict(method="animate", label=_fmt(v),
                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
             for i, v in enumerate(values)]
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix=f"{label} = "),
                                    pad=dict(t=40))])
    if play:
        fig.update_layout(updatemenus=[dict(
            type="buttons", showactive=False, x=0, y=-0.12, xanchor="right", yanchor="top", direction="left",
            buttons=[dict(label="▶", method="animate",
                          args=[None, dict(frame=dict(duration=duration_ms, redraw=True), fromcurrent=True,
                                           transition=dict(duration=0))]),
                     dict(label="❚❚", method="animate",
                          args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])])
    fig.update_layout(margin=dict(b=110))
    return fig


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
