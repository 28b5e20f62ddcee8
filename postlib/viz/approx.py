"""Figures for the kernel-attention and low-rank/hashing chapters and the "Attention approximations" page.

Every approximation here is *linear in V*, so its effective (L × L) attention
map is simply ``method(q, k, V = I)`` — the same code path that produces the
outputs, not a separate drawing routine. Builders:

* :func:`approx_maps_figure` — exact map | approximate map | |error|, with cost;
* :func:`rnn_state_step` / :func:`rnn_state_figure` — causal linear attention's state S_t filling up;
* :func:`recall_figure` — MQAR accuracy per mixer.

Performer's random-feature figures are in :mod:`postlib.viz.favor`, LoLA's in :mod:`postlib.viz.lola`.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from .._checks import check_choice, check_positive_int
from ..attention.linear import apply_feature_map, linear_attention, state_trajectory
from ..attention.linformer import linformer_attention, mean_pool_projection
from ..attention.performer import performer_attention
from ..attention.reformer import SELF_SCORE, lsh_attention
from ..attention.softmax import attention_weights
from . import palette
from .core import frames_figure
from .theme import caption_text, coloraxis, finish

METHODS = ("linear", "performer", "linformer", "reformer")
BUDGET_NAME = {"linear": "(none)", "performer": "features m", "linformer": "rank k", "reformer": "hash rounds"}
DEFAULT_BUDGETS = {"linear": [1], "performer": [4, 8, 16, 32, 64, 128, 256],
                   "linformer": [2, 4, 8, 16, 32, 64], "reformer": [1, 2, 4, 8]}


def demo_qk(length: int, head_dim: int, seed: int = 0,
            temperature: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 1, L, d) fp64 queries and keys with some structure: a shared slowly varying 'topic' plus noise,
    so attention has both local and content-based peaks (random q, k alone give a featureless map)."""
    g = torch.Generator().manual_seed(seed)
    topics = torch.randn(max(2, length // 8), head_dim, generator=g, dtype=torch.float64)
    which = (torch.arange(length) * topics.shape[0]) // length
    base = topics[which]
    q = base + 0.7 * torch.randn(length, head_dim, generator=g, dtype=torch.float64)
    k = base + 0.7 * torch.randn(length, head_dim, generator=g, dtype=torch.float64)
    scale = head_dim ** 0.25 / math.sqrt(temperature)  # same-topic scores q·k/√d ≈ temperature
    return (q / scale)[None, None], (k / scale)[None, None]


def exact_and_approx_maps(method: str, budget: int, length: int = 64, head_dim: int = 16, causal: bool = False,
                          seed: int = 0, n_buckets: int = 8, chunk_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(exact, approximate) (L × L) numpy maps for ``method`` at ``budget``; the approximation is
    ``method(q, k, I)``. Reformer uses shared QK, so its exact map is shared-QK softmax (self masked)."""
    check_choice(method, "method", METHODS)
    check_positive_int(budget, "budget")
    q, k = demo_qk(length, head_dim, seed)
    eye = torch.eye(length, dtype=torch.float64)[None, None]
    if method == "reformer":
        keys = F.normalize(q, dim=-1)
        scores = q @ keys.transpose(-1, -2) / math.sqrt(head_dim)
        scores = scores.masked_fill(torch.eye(length, dtype=torch.bool), SELF_SCORE)
        if causal:
            scores = scores.masked_fill(~torch.ones(length, length, dtype=torch.bool).tril(), float("-inf"))
        exact = torch.softmax(scores, -1)
        approx = lsh_attention(q, eye, n_buckets, budget, chunk_size, causal=causal, seed=seed)
    else:
        exact = attention_weights(q, k, causal=causal)
        if method == "linear":
            approx = linear_attention(q, k, eye, causal=causal)
        elif method == "performer":
            approx = performer_attention(q, k, eye, budget, causal=causal, seed=seed)
        else:
            if causal:
                raise ValueError("linformer cannot be causal: its projection mixes all positions (see the chapter)")
            # Untrained stand-in for the learned E, F: average-pool the sequence into k segments
            # (random JL projections are far worse untrained; see the low-rank chapter's error figure).
            P = mean_pool_projection(min(budget, length), length)
            approx = linformer_attention(q, k, eye, P, P)
    return exact[0, 0].numpy(), approx[0, 0].numpy()


def cost_per_query(method: str, budget: int, length: int, head_dim: int, chunk_size: int = 8) -> int:
    """Multiply-adds per query for the score-and-mix part (what the method saves), from its formula."""
    d = head_dim
    return {"exact": 2 * length * d, "linear": 2 * d * d, "performer": 2 * budget * d + budget * d,
            "linformer": 2 * budget * d, "reformer": budget * 2 * (2 * chunk_size) * d}[method]


BUDGET_SYMBOL = {"performer": "m", "linformer": "k", "reformer": "rounds"}


def budget_label(method: str, budget: int) -> str:
    """A short panel title: "performer (m = 16)"; linear attention has no budget: "linear (elu+1)"."""
    check_choice(method, "method", METHODS)
    if method == "linear":
        return "linear (elu+1)"
    return f"{method} ({BUDGET_SYMBOL[method]} = {budget})"


def approx_maps_figure(method: str = "performer", budget: int = 16, length: int = 64, head_dim: int = 16,
                       causal: bool = False, seed: int = 0) -> go.Figure:
    """Three heatmaps: exact softmax map, the method's effective map, and |difference|; the caption has
    the relative error and the cost per query."""
    exact, approx = exact_and_approx_maps(method, budget, length, head_dim, causal, seed)
    err = np.abs(approx - exact)
    rel = float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))
    c_exact, c_apx = cost_per_query("exact", budget, length, head_dim), cost_per_query(method, budget, length, head_dim)
    vmax = float(max(exact.max(), np.abs(approx).max()))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.12,
                        subplot_titles=("exact softmax", budget_label(method, budget), "|error|"))
    hover = "query %{y}, key %{x}: %{z:.3f}<extra></extra>"
    coloraxis(fig, "coloraxis", title="weight", cmin=min(0.0, float(approx.min())), cmax=vmax)
    coloraxis(fig, "coloraxis2", colorscale=palette.MAGNITUDE, title="|error|", cmin=0)
    fig.add_trace(go.Heatmap(z=exact, coloraxis="coloraxis", hovertemplate=hover), 1, 1)
    fig.add_trace(go.Heatmap(z=approx, coloraxis="coloraxis", hovertemplate=hover), 1, 2)
    fig.add_trace(go.Heatmap(z=err, coloraxis="coloraxis2", hovertemplate=hover), 1, 3)
    for col in (1, 2, 3):
        fig.update_xaxes(title="key j", constrain="domain", range=[-0.5, length - 0.5], row=1, col=col)
        fig.update_yaxes(title="query i", autorange="reversed", constrain="domain",
                         scaleanchor=f"x{col if col > 1 else ''}", row=1, col=col)
    caption = caption_text(
        f"Attention maps for L = {length}, d = {head_dim}{', causal' if causal else ''}: exact softmax (left), "
        f"{method}'s effective map, computed by running it on V = I (middle), and their absolute difference (right)",
        "" if method == "linear" else f"Budget: {BUDGET_NAME[method]} = {budget}",
        f"Relative error ‖Â − A‖/‖A‖ = {rel:.3f}; cost per query ≈ {c_apx:,} multiply-adds against {c_exact:,} "
        f"for exact attention")
    return finish(fig, f"Attention maps: exact vs {method}", caption, height=380)


def map_error(method: str, budget: int, length: int = 64, head_dim: int = 16, seed: int = 0) -> float:
    exact, approx = exact_and_approx_maps(method, budget, length, head_dim, False, seed)
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def error_vs_budget_figure(budgets: dict | None = None, length: int = 64, head_dim: int = 16,
                           seeds=(0, 1, 2)) -> go.Figure:
    """Relative map error against each method's budget (mean over seeds), log-log, one trace per method;
    linear attention, which has no budget, is a dotted level."""
    budgets = budgets or {m: b for m, b in DEFAULT_BUDGETS.items() if m != "linear"}
    fig = go.Figure()
    for method, values in budgets.items():
        errs = [np.mean([map_error(method, b, length, head_dim, s) for s in seeds]) for b in values]
        fig.add_trace(go.Scatter(x=list(values), y=errs, mode="lines+markers", name=f"{method} ({BUDGET_NAME[method]})",
                                 line=dict(color=palette.color(method))))
    lin = float(np.mean([map_error("linear", 1, length, head_dim, s) for s in seeds]))
    every = [b for values in budgets.values() for b in values]
    fig.add_trace(go.Scatter(x=[min(every), max(every)], y=[lin, lin], mode="lines", name="linear (elu+1), no budget",
                             line=dict(color=palette.color("linear"), dash="dot")))
    fig.update_xaxes(type="log", title="budget (features, rank or hash rounds)")
    fig.update_yaxes(type="log", title="‖Â − A‖ / ‖A‖")
    caption = caption_text(
        f"Relative error of each method's effective attention map against its budget, L = {length}, d = {head_dim}, "
        f"mean of {len(seeds)} seeds", f"Linear attention has no budget: its error is {lin:.2f} at any size")
    return finish(fig, "Attention-map error vs budget", caption)


# ------------------------------------------------------------------------------- causal linear attention = RNN
def rnn_state_step(t: int, length: int = 16, head_dim: int = 8, seed: int = 0) -> go.Figure:
    """Token t of causal linear attention: the state S_t = Σ_{j≤t} φ(k_j)v_jᵀ (left), and the attention
    row φ(q_t)ᵀφ(k_j) / Σ (right) that reading S_t is equivalent to."""
    q, k = demo_qk(length, head_dim, seed)
    g = torch.Generator().manual_seed(seed + 7)
    v = torch.randn(length, head_dim, generator=g, dtype=torch.float64)
    if not 0 <= t < length:
        raise ValueError(f"t must be in [0, length={length}), got {t}")
    S = state_trajectory(k[0, 0], v)
    pq, pk = apply_feature_map(q[0, 0]), apply_feature_map(k[0, 0])
    row = (pk[: t + 1] @ pq[t]).numpy()
    weights = np.zeros(length)
    weights[: t + 1] = row / row.sum()
    smax = float(S[-1].abs().max())
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.14,
                        subplot_titles=(f"state S_t ({head_dim}×{head_dim})", "weights over tokens j ≤ t"))
    fig.add_trace(go.Heatmap(z=S[t].numpy(), zmin=-smax, zmax=smax, colorscale=palette.DIVERGING, showscale=False,
                             hovertemplate="φ-dim %{y}, v-dim %{x}: %{z:.2f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=list(range(length)), y=weights, marker_color=palette.color("linear"), showlegend=False),
                  1, 2)
    fig.update_xaxes(title="value dim", constrain="domain", row=1, col=1)
    fig.update_yaxes(title="feature dim of φ", autorange="reversed", scaleanchor="x", constrain="domain", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title="weight", row=1, col=2)
    fig.update_xaxes(title="token j", range=[-0.5, length - 0.5], row=1, col=2)
    caption = caption_text(
        f"Causal linear attention read as a recurrent network, L = {length}, d = {head_dim}. Left: the state "
        f"S_t = S_(t−1) + φ(k_t)v_tᵀ after token t (blue < 0 < red), a {head_dim}×{head_dim} matrix whatever t is. "
        f"Right: the attention weights φ(q_t)ᵀφ(k_j) / Σ over the tokens j ≤ t that reading S_t amounts to")
    return finish(fig, f"Linear attention as an RNN, t = {t}", caption, height=380)


def rnn_state_figure(length: int = 16, head_dim: int = 8, seed: int = 0) -> go.Figure:
    """All tokens as plotly frames with a play button (works in the static book)."""
    return frames_figure(rnn_state_step, "t", range(length), length=length, head_dim=head_dim, seed=seed)


TICK_CHARS = 12           # characters per line of a category label (about 80 px at 12 px)


def _tick_lines(name) -> str:
    """A category label broken into lines of at most ``TICK_CHARS`` characters (plotly's ``<br>``)."""
    return "<br>".join(textwrap.wrap(str(name), TICK_CHARS)) or str(name)


def recall_figure(results: dict, title: str = "Associative recall (MQAR)", *, caption: str | None = None) -> go.Figure:
    """Bar chart ``{mixer: accuracy}``, each bar in its mixer's colour.

    An accuracy may be a list (one per training seed): the bar is then their mean and every seed is drawn
    as a dot on it, so a mean of one success and one failure is not read as a middling result."""
    names = list(results)
    per_seed = {n: np.atleast_1d(np.asarray(results[n], dtype=float)) for n in names}
    means = [float(per_seed[n].mean()) for n in names]
    fig = go.Figure(go.Bar(x=names, y=means, marker_color=palette.series_colors(names), name="mean",
                           text=[f"{m:.0%}" for m in means], textposition="outside", showlegend=False))
    if any(len(a) > 1 for a in per_seed.values()):
        xs = [n for n in names for _ in per_seed[n]]
        fig.add_trace(go.Scatter(x=xs, y=np.concatenate([per_seed[n] for n in names]), mode="markers",
                                 name="each training seed",
                                 marker=dict(color=palette.NEUTRALS["ink"], size=7, symbol="diamond")))
    fig.update_yaxes(range=[0, 1.1], title="accuracy on queries", tickformat=".0%")
    # A long mixer name ("lola (window 4, sparse 4)") would be drawn slanted and push the plot's right
    # margin in on a phone: each name is broken into short lines instead.
    fig.update_xaxes(title="mixer", tickmode="array", tickvals=names, ticktext=[_tick_lines(n) for n in names])
    default = "Accuracy on the queries after a short training run, one bar per mixer"
    return finish(fig, title, caption_text(caption or default))
