"""The Mamba block as a diagram (Gu & Dao 2023, Fig. 3), with the shapes of a given configuration.

``mamba_block_figure`` draws the data flow of ``postlib.ssm.mamba.MambaMixer._forward`` from top to
bottom: the in-projection splits into the SSM branch x and the gate z; x goes through the causal
depthwise convolution, SiLU, the projection to (Δ of rank r, B, C) and the selective scan; the
gate multiplies the scan's output by SiLU(z); the out-projection returns to d_model. A single
column of boxes (the gate beside the scan) keeps it readable on a phone.
"""
from __future__ import annotations

import plotly.graph_objects as go

from . import palette
from .theme import caption_text, finish

# Where the boxes sit: (x centre, row, width) in a 10-wide canvas; row 0 is the top.
_MAIN, _SIDE, _ROW = 3.6, 8.3, 1.2
_PLACES = {
    "input": (5.0, 0, 6.0), "in_proj": (5.0, 1, 8.6), "x": (_MAIN, 2, 5.4), "z": (_SIDE, 2, 3.0),
    "conv": (_MAIN, 3, 5.4), "silu_x": (_MAIN, 4, 5.4), "x_proj": (_MAIN, 5, 5.4), "dt_proj": (_MAIN, 6, 5.4),
    "scan": (_MAIN, 7, 5.4), "silu_z": (_SIDE, 7, 3.0), "gate": (5.0, 8, 8.6), "out_proj": (5.0, 9, 8.6),
    "output": (5.0, 10, 6.0),
}
_LAYOUT = {k: (x, _ROW * (10 - row), w) for k, (x, row, w) in _PLACES.items()}
_EDGES = [("input", "in_proj"), ("in_proj", "x"), ("in_proj", "z"), ("x", "conv"), ("conv", "silu_x"),
          ("silu_x", "x_proj"), ("x_proj", "dt_proj"), ("dt_proj", "scan"), ("z", "silu_z"), ("scan", "gate"),
          ("silu_z", "gate"), ("gate", "out_proj"), ("out_proj", "output")]
_HEIGHT = 0.95


def mamba_block_parameters(d_model: int, expand: int, d_state: int, d_conv: int, dt_rank: int) -> dict[str, int]:
    """Parameters of each learned part (weights and biases), as ``MambaMixer`` creates them."""
    d_inner = expand * d_model
    return {"in_proj": d_model * 2 * d_inner + 2 * d_inner, "conv1d": d_inner * d_conv + d_inner,
            "x_proj": d_inner * (dt_rank + 2 * d_state), "dt_proj": dt_rank * d_inner + d_inner,
            "A, D": d_inner * d_state + d_inner, "out_proj": d_inner * d_model + d_model}


def mamba_block_figure(d_model: int = 32, expand: int = 2, d_state: int = 16, d_conv: int = 4,
                       dt_rank: int = 2, *, caption: str | None = None) -> go.Figure:
    """The Mamba block's data flow with this configuration's sizes; hover a box for what it does."""
    d_inner = expand * d_model
    ssm, gate, ink = palette.color("mamba"), palette.color("ssm"), palette.NEUTRALS["ink"]
    boxes = {
        "input": (f"input h: (L, {d_model})", "the block's input, one d_model vector per token", "faint"),
        "in_proj": (f"in_proj: {d_model} → 2·{d_inner}", f"one Linear, split into x and z (expand = {expand})", "line"),
        "x": (f"x: (L, {d_inner})", "the SSM branch", "faint"),
        "z": (f"z: (L, {d_inner})", "the gate branch", "faint"),
        "conv": (f"causal conv1d, width {d_conv}", f"depthwise: each of the {d_inner} channels mixes its last "
                 f"{d_conv} tokens, never a future one", "line"),
        "silu_x": ("SiLU → u", "u = x · sigmoid(x), elementwise: the scan's input", "line"),
        "x_proj": (f"x_proj: u → (Δ′, B, C)", f"one Linear {d_inner} → {dt_rank} + 2·{d_state}: a rank-{dt_rank} "
                   f"Δ′ and the {d_state} numbers of B_t and of C_t, per token", "line"),
        "dt_proj": (f"dt_proj: {dt_rank} → {d_inner}, softplus", f"Δ_t = softplus(W Δ′ + b), one step per "
                    f"channel: the low-rank Δ projection", "line"),
        "scan": (f"scan(u, Δ, A, B, C) + D·u", f"x_t = exp(Δ_t A) x_(t−1) + Δ_t B_t u_t, y_t = C_t·x_t + D u_t; "
                 f"A is ({d_inner}, {d_state}), D an additive skip", "ssm"),
        "silu_z": ("SiLU(z)", "the gate, elementwise", "gate"),
        "gate": ("y ⊙ SiLU(z)", "the gate multiplies the scan's output channel by channel", "line"),
        "out_proj": (f"out_proj: {d_inner} → {d_model}", "one Linear back to the model width", "line"),
        "output": (f"output: (L, {d_model})", "the block's output", "faint"),
    }
    fills = {"faint": palette.NEUTRALS["faint"], "line": "#ffffff", "ssm": ssm, "gate": gate}
    fig = go.Figure()
    for a, b in _EDGES:          # every arrow is vertical: at the target's x when the source box spans it
        (xa, ya, wa), (xb, yb, _) = _LAYOUT[a], _LAYOUT[b]
        x = xb if abs(xb - xa) <= wa / 2 else xa
        fig.add_annotation(x=x, y=yb + _HEIGHT / 2, ax=x, ay=ya - _HEIGHT / 2, xref="x", yref="y", axref="x",
                           ayref="y", text="", showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1.3,
                           arrowcolor=palette.NEUTRALS["muted"])
    for key, (label, hover, kind) in boxes.items():
        x, y, w = _LAYOUT[key]
        fig.add_shape(type="rect", x0=x - w / 2, x1=x + w / 2, y0=y - _HEIGHT / 2, y1=y + _HEIGHT / 2,
                      line=dict(color=ink, width=1), fillcolor=fills[kind], layer="below")
        fig.add_annotation(x=x, y=y, text=label, showarrow=False, font=dict(size=11, color="#ffffff" if kind in
                                                                            ("ssm", "gate") else ink))
    fig.add_trace(go.Scatter(x=[_LAYOUT[k][0] for k in boxes], y=[_LAYOUT[k][1] for k in boxes], mode="markers",
                             marker=dict(size=28, opacity=0, color=ink), hoverinfo="text", showlegend=False,
                             name="parts", text=[f"{boxes[k][0]}: {boxes[k][1]}" for k in boxes]))
    fig.update_xaxes(visible=False, range=[0, 10], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.6, _ROW * 10 + 0.6], fixedrange=True)
    params = mamba_block_parameters(d_model, expand, d_state, d_conv, dt_rank)
    default = (f"The Mamba block for d_model = {d_model}, expansion {expand} (d_inner = {d_inner}), state size N = "
               f"{d_state}, convolution width {d_conv} and Δ rank r = {dt_rank}; shapes per sequence of L tokens")
    counts = ", ".join(f"{k} {v:,}" for k, v in params.items())
    return finish(fig, "The Mamba block", caption_text(
        caption or default, f"Parameters: {counts}, {sum(params.values()):,} in all"), height=600,
        margin=dict(l=10, r=10, t=40, b=10))
