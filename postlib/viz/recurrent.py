"""Figures for the recurrent-causal chapter and the "Recurrent" dashboard page (pure: data in, Figure out).

RetNet: the decay matrix and forgetting curves (:func:`decay_figure`), the state as tokens arrive
(:func:`retention_state_figure`), decoding cost against a KV cache (:func:`decode_cost_figure`).
Transformer-XL: what a query sees through the memory (:func:`memory_window_figure`), the reach per position
(:func:`reach_figure`), the relative shift (:func:`rel_shift_figure`), copy accuracy (:func:`copy_accuracy_figure`).
Mega: the damped EMA's kernel (:func:`ema_kernel_figure`).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..recurrent.copy_task import dependency_reach
from ..recurrent.retention import decay_matrix, forgetting_curve, retention_states
from ..recurrent.transformer_xl import rel_shift
from ..ssm.ema import ema_kernel
from . import palette
from .theme import caption_text, coloraxis, finish, provenance_sentence


def _gammas(gammas) -> torch.Tensor:
    g = torch.tensor([float(x) for x in gammas], dtype=torch.float64)
    if g.numel() == 0:
        raise ValueError("gammas must hold at least one decay")
    return g


# --------------------------------------------------------------------------- RetNet
def decay_figure(gammas=(1 - 2 ** -5, 1 - 2 ** -6, 1 - 2 ** -7, 1 - 2 ** -8), length: int = 64,
                 head: int = 0) -> go.Figure:
    """Left: the decay matrix D_ts = γ^{t−s} (t ≥ s) of one head; right: every head's forgetting curve γ^d with
    its half-life marked."""
    g = _gammas(gammas)
    if not 0 <= head < len(g):
        raise ValueError(f"head must be in [0, {len(g)}), got {head}")
    D = decay_matrix(g[head:head + 1], length)[0].numpy()
    curves = forgetting_curve(g, length).numpy()
    fig = make_subplots(1, 2, column_widths=[0.45, 0.55], horizontal_spacing=0.16,
                        subplot_titles=(f"D for γ = {g[head]:.4g}", "forgetting curves γ^d"))
    axis = coloraxis(fig, colorscale=palette.SEQUENTIAL, title="D_ts", cmin=0, cmax=1)
    fig.add_trace(go.Heatmap(z=np.where(D > 0, D, np.nan), coloraxis=axis,
                             hovertemplate="t %{y}, s %{x}: %{z:.3f}<extra></extra>"), 1, 1)
    colours = palette.ramp(len(g))
    for h, (gamma, curve) in enumerate(zip(g.tolist(), curves)):
        half = math.log(0.5) / math.log(gamma)
        fig.add_trace(go.Scatter(x=np.arange(length), y=curve, mode="lines", name=f"γ = {gamma:.4g}",
                                 line=dict(color=colours[h], width=3 if h == head else 1.5)), 1, 2)
        if half < length:
            fig.add_trace(go.Scatter(x=[half], y=[0.5], mode="markers", showlegend=False,
                                     marker=dict(color=colours[h], size=8), hovertemplate=f"half-life {half:.1f}"
                                     "<extra></extra>"), 1, 2)
    fig.update_xaxes(title_text="key position s", constrain="domain", row=1, col=1)
    fig.update_yaxes(title_text="query position t", autorange="reversed", scaleanchor="x", constrain="domain",
                     row=1, col=1)
    fig.update_xaxes(title_text="distance d = t − s", row=1, col=2)
    fig.update_yaxes(title_text="weight γ^d", range=[0, 1.02], row=1, col=2)
    halves = ", ".join(f"{math.log(0.5) / math.log(x):.0f}" for x in g.tolist())
    caption = caption_text(
        f"Retention's decay over {length} tokens. Left: the matrix D of the parallel form (QKᵀ ⊙ D)V for the "
        f"highlighted head — causal mask and decay in one; blank cells are exactly 0 (the future)",
        f"Right: how much a token d steps back still counts, γ^d, for each head; dots mark the half-lives "
        f"log ½ / log γ ({halves} tokens; those beyond {length} are off the plot)")
    return finish(fig, "A fixed forgetting curve per head", caption, height=420)


def retention_state_figure(t: int = 23, gamma: float = 0.8, length: int = 24, d_k: int = 6, d_v: int = 6,
                           seed: int = 0) -> go.Figure:
    """Token t of retention read as an RNN: the state S_t = γ S_{t−1} + k_tᵀ v_t (left) and the weight γ^{t−s}
    with which each earlier token's k_sᵀ v_s is still inside it (right). Animate over t with ``frames_figure``."""
    if not 0 <= t < length:
        raise ValueError(f"t must be in [0, length={length}), got {t}")
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(length, d_k, generator=gen, dtype=torch.float64) / math.sqrt(d_k)
    v = torch.randn(length, d_v, generator=gen, dtype=torch.float64)
    states = retention_states(k, v, gamma)
    smax = float(states.abs().max())
    weights = np.zeros(length)
    weights[: t + 1] = float(gamma) ** np.arange(t, -1, -1)
    fig = make_subplots(1, 2, column_widths=[0.42, 0.58], horizontal_spacing=0.16,
                        subplot_titles=(f"state S_t ({d_k}×{d_v})", "weight of token s in S_t"))
    axis = coloraxis(fig, colorscale=palette.DIVERGING, title="S_t", cmin=-smax, cmax=smax)
    fig.add_trace(go.Heatmap(z=states[t].numpy(), coloraxis=axis,
                             hovertemplate="key dim %{y}, value dim %{x}: %{z:.2f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=np.arange(length), y=weights, marker_color=palette.color("retnet"), showlegend=False,
                         hovertemplate="token %{x}: γ^(t−s) = %{y:.3f}<extra></extra>"), 1, 2)
    fig.update_xaxes(title_text="value dim", constrain="domain", row=1, col=1)
    fig.update_yaxes(title_text="key dim", autorange="reversed", scaleanchor="x", constrain="domain", row=1, col=1)
    fig.update_xaxes(title_text="token s", range=[-0.5, length - 0.5], row=1, col=2)
    fig.update_yaxes(title_text="γ^(t−s)", range=[0, 1.05], row=1, col=2)
    caption = caption_text(
        f"Retention as a recurrent network, γ = {gamma:g}, {length} random tokens (seed {seed}). Left: the "
        f"state S_t = γ S_(t−1) + k_tᵀv_t, a {d_k}×{d_v} matrix whatever t is (blue < 0 < red, one scale for "
        f"every t). Right: each earlier token is still in the state, scaled by γ^(t−s): the decay forgets "
        f"geometrically, without a softmax and without a cache")
    return finish(fig, f"The RetNet state at t = {t}", caption, height=380)


def decode_cost_figure(rows, *, provenance: dict | None = None, title: str | None = None,
                       caption: str | None = None) -> go.Figure:
    """Per-token decode cost against the context: time (left) and the bytes kept between tokens (right),
    one line per method; rows carry ``name``, ``length``, ``time_ms`` and ``state_bytes``."""
    rows = [r for r in rows if r.get("status", "ok") == "ok"]
    names = list(dict.fromkeys(r["name"] for r in rows))
    if not names:
        raise ValueError("rows hold no measurement with status 'ok'")
    fig = make_subplots(1, 2, horizontal_spacing=0.16, subplot_titles=("time per token", "state kept per sequence"))
    for name, style in zip(names, palette.series_styles(names)):
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: r["length"])
        x = [r["length"] for r in mine]
        fig.add_trace(go.Scatter(x=x, y=[r["time_ms"] for r in mine], mode="lines+markers", name=name,
                                 line=style, legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=[r["state_bytes"] / 2 ** 20 for r in mine], mode="lines+markers",
                                 name=name, line=style, legendgroup=name, showlegend=False), 1, 2)
    fig.update_xaxes(type="log", title_text="context (tokens already seen)")
    fig.update_yaxes(type="log", title_text="ms per token", row=1, col=1)
    fig.update_yaxes(type="log", title_text="MiB", row=1, col=2)
    default = ("Decoding one more token after a context of n tokens, one layer, batch 1. Left: median time of one "
               "step. Right: the bytes each method keeps between tokens (RetNet: its d_k × d_v state per head; "
               "softmax: the keys and values of every past token)")
    return finish(fig, title or "Decoding: constant state vs growing cache",
                  caption_text(caption or default, provenance_sentence(provenance)), height=420)


# --------------------------------------------------------------------------- Transformer-XL
def memory_window_figure(position: int = 21, length: int = 32, segment_length: int = 8, memory_length: int = 8,
                         n_layers: int = 2) -> go.Figure:
    """Which positions the output at ``position`` can depend on, layer by layer: its own segment, the cached
    memory (no gradient), and what lower layers bring in from further back."""
    for name, value in (("length", length), ("segment_length", segment_length), ("n_layers", n_layers)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 0 <= position < length:
        raise ValueError(f"position must be in [0, length={length}), got {position}")
    segment_start = (position // segment_length) * segment_length
    grid = np.zeros((n_layers, length))
    earliest = position
    for layer in range(n_layers - 1, -1, -1):             # from the top layer down to the input
        earliest = max(0, (earliest // segment_length) * segment_length - memory_length)
        grid[layer, earliest:position + 1] = 1.0           # reached through memories (cached, no gradient)
        grid[layer, segment_start:position + 1] = 2.0      # the query's own segment (gradient flows)
    grid[n_layers - 1, position] = 3.0
    categories = (("not seen", palette.NEUTRALS["faint"]),
                  ("via memory (no gradient)", palette.color("transformer_xl")),
                  ("own segment", palette.color("retnet")), ("the query", palette.NEUTRALS["ink"]))
    fig = go.Figure()
    rows, cols = np.indices(grid.shape)
    size = max(5, min(14, int(560 / length)))
    for value, (label, colour) in enumerate(categories):
        hit = grid == value
        fig.add_trace(go.Scatter(x=cols[hit], y=rows[hit] + 1, mode="markers", name=label,
                                 marker=dict(color=colour, size=size, symbol="square"),
                                 hovertemplate=f"layer %{{y}}, position %{{x}}: {label}<extra></extra>"))
    for boundary in range(segment_length, length, segment_length):
        fig.add_vline(x=boundary - 0.5, line=dict(color=palette.NEUTRALS["muted"], width=1, dash="dot"))
    reach = position - int(np.argmax(grid[0] > 0))
    fig.update_xaxes(title_text="position", range=[-0.5, length - 0.5])
    fig.update_yaxes(title_text="layer", tickvals=list(range(1, n_layers + 1)), range=[0.4, n_layers + 0.6])
    caption = caption_text(
        f"The output at position {position} of a {n_layers}-layer Transformer-XL with segments of "
        f"{segment_length} tokens (dotted lines) and a memory of {memory_length} states per layer. Row n: the "
        f"positions whose layer-n inputs it depends on — its own segment (gradient flows), and positions "
        f"reached through cached memories (values only). It reaches {reach} tokens back; with memory 0 only its "
        f"own segment")
    return finish(fig, f"What position {position} can see", caption, height=300, legend="bottom")


def reach_figure(length: int = 48, segment_length: int = 8, memory_length: int = 8, n_layers: int = 2) -> go.Figure:
    """The largest dependency distance at each position: vanilla segments, one layer with memory, N layers."""
    fig = go.Figure()
    configs = {"vanilla segments (no memory)": (0, n_layers), "Transformer-XL, 1 layer": (memory_length, 1),
               f"Transformer-XL, {n_layers} layers": (memory_length, n_layers)}
    for (label, (memory, layers)), style in zip(configs.items(), palette.series_styles(list(configs))):
        reach = dependency_reach(length, segment_length, memory, layers).numpy()
        fig.add_trace(go.Scatter(x=np.arange(length), y=reach, mode="lines", name=label, line=dict(shape="hv", **style)))
    for boundary in range(segment_length, length, segment_length):
        fig.add_vline(x=boundary - 0.5, line=dict(color=palette.NEUTRALS["context"], width=1, dash="dot"))
    fig.update_xaxes(title_text="position p")
    fig.update_yaxes(title_text="reach (tokens back)")
    caption = caption_text(
        f"How far back the output at position p can depend on the input, segments of {segment_length} tokens "
        f"(dotted lines), memory of {memory_length} states per layer. A vanilla segment model sees only its own "
        f"segment (the sawtooth); a memory adds M per layer: offset + N·M for N layers — the paper's O(N × L)")
    return finish(fig, "Memory extends the context, layer by layer", caption, height=380)


def rel_shift_figure(length_q: int = 4, length_k: int = 7) -> go.Figure:
    """The relative-shift trick on distances: before the shift each row lists the distances K−1 … 0; after it,
    entry (i, j) holds the distance (K − L + i) − j of query i to key j (the future, junk, is left blank)."""
    L, K = int(length_q), int(length_k)
    if L < 1 or K < L:
        raise ValueError(f"need 1 <= length_q <= length_k, got length_q={length_q}, length_k={length_k}")
    before = np.tile(np.arange(K - 1, -1, -1, dtype=float), (L, 1))
    after = rel_shift(torch.tensor(before)).numpy()
    i, j = np.indices((L, K))
    visible = j <= K - L + i                              # keys up to the query's own position
    fig = make_subplots(1, 2, horizontal_spacing=0.14, subplot_titles=("before: column m ↔ distance K−1−m",
                                                                       "after rel_shift: distance i → j"))
    axis = coloraxis(fig, colorscale=palette.SEQUENTIAL, title="distance", cmin=0, cmax=K - 1)
    for col, z, text in ((1, before, before), (2, np.where(visible, after, np.nan), np.where(visible, after, np.nan))):
        labels = [["" if np.isnan(x) else f"{int(x)}" for x in row] for row in text]
        fig.add_trace(go.Heatmap(z=z, coloraxis=axis, text=labels, texttemplate="%{text}", xgap=1, ygap=1,
                                 hovertemplate="query %{y}, column %{x}: %{z}<extra></extra>"), 1, col)
        fig.update_xaxes(title_text="key j" if col == 2 else "column m", constrain="domain", row=1, col=col)
        fig.update_yaxes(title_text="query i", autorange="reversed", scaleanchor=f"x{'' if col == 1 else col}",
                         constrain="domain", row=1, col=col)
    caption = caption_text(
        f"{L} queries, {K} keys (a memory of {K - L} then the segment). (q_i + v)·r is computed once for every "
        f"distance, in descending order (left); padding one column and reshaping moves row i left by "
        f"{L} − 1 − i, so each entry lands on the key at that distance (right; blank: the future, masked)")
    return finish(fig, "The relative shift, on distances", caption, height=360)


def copy_accuracy_figure(rows, *, provenance: dict | None = None, title: str | None = None,
                         caption: str | None = None) -> go.Figure:
    """Copy accuracy against the copy distance Δ, one line per model (rows of ``effective_context``)."""
    rows = list(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not models:
        raise ValueError("rows hold no result")
    fig = go.Figure()
    for model, style in zip(models, palette.series_styles(models)):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["delay"])
        fig.add_trace(go.Scatter(x=[r["delay"] for r in mine], y=[r["accuracy"] for r in mine],
                                 mode="lines+markers", name=model, line=style))
    delays = [r["delay"] for r in rows]
    chance = rows[0]["chance"]
    fig.add_trace(go.Scatter(x=[min(delays), max(delays)], y=[chance, chance], mode="lines", name="chance",
                             line=dict(color=palette.NEUTRALS["context"], dash="dot")))
    segment = rows[0]["segment_length"]
    fig.add_vline(x=segment, line=dict(color=palette.NEUTRALS["muted"], dash="dash", width=1))
    fig.update_xaxes(title_text="copy distance Δ (tokens)")
    fig.update_yaxes(title_text="accuracy", range=[0, 1.05])
    default = (f"Accuracy of copying the token Δ positions back, for the same {rows[0]['n_layers']}-layer model "
               f"trained with segments of {segment} tokens (dashed line) without a memory and with one of "
               f"{max(r['memory_length'] for r in rows)} states per layer")
    return finish(fig, title or "Copying across segments", caption_text(caption or default,
                                                                        provenance_sentence(provenance)))


# --------------------------------------------------------------------------- Mega
def ema_kernel_figure(alpha: float = 0.5, delta: float = 0.5, length: int = 48) -> go.Figure:
    """Mega's EMA kernel K_t = α(1 − αδ)^t (one dimension, β = η = 1) for the chosen α, δ, beside the kernels
    of α = 0.1 … 0.9 at the same δ."""
    for name, value in (("alpha", alpha), ("delta", delta)):
        if not 0 < float(value) < 1:
            raise ValueError(f"{name} must lie strictly inside (0, 1), got {value}")
    fig = go.Figure()
    others = (0.1, 0.3, 0.5, 0.7, 0.9)                   # fixed, so every (α, δ) draws the same traces
    colours = palette.ramp(len(others))
    one = torch.ones(1, 1, dtype=torch.float64)
    for a, colour in zip(others, colours):
        k = ema_kernel(one * a, one * delta, one, one, length)[0].numpy()
        fig.add_trace(go.Scatter(x=np.arange(length), y=k, mode="lines", name=f"α = {a:g}",
                                 line=dict(color=colour, width=1.2, dash="dot")))
    k = ema_kernel(one * alpha, one * delta, one, one, length)[0].numpy()
    fig.add_trace(go.Scatter(x=np.arange(length), y=k, mode="lines+markers", name=f"α = {alpha:g} (chosen)",
                             line=dict(color=palette.color("mega"), width=3)))
    fig.update_xaxes(title_text="lag t")
    fig.update_yaxes(title_text="kernel K_t", range=[0, 1.0])
    decay = 1 - alpha * delta
    half = math.log(0.5) / math.log(decay)
    caption = caption_text(
        f"The damped EMA's kernel K_t = α(1 − αδ)^t (β = η = 1): the weight of the input t steps back, for "
        f"δ = {delta:g}. The chosen α = {alpha:g} starts at α and decays by 1 − αδ = {decay:.3g} per step "
        f"(half-life {half:.1f} steps): a larger α weighs the present more and forgets faster; δ damps "
        f"the decay. A real eigenvalue: the kernel never oscillates, unlike S4D's complex ones")
    return finish(fig, f"EMA kernel, α = {alpha:g}, δ = {delta:g}", caption, height=380)
