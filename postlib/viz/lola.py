"""Figures for LoLA (linear attention with a sliding window and a sparse cache, the LoLA page).

* :func:`lola_memory_figure` — which of the three memories holds each earlier token at every step;
* :func:`lola_recall_curves` / :func:`lola_recall_figure` — associative recall of the attention operator
  against the size of the sparse cache, beside softmax and linear attention.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..attention.linear import linear_attention
from ..attention.lola import lola_attention, lola_memory_trace, recall_error, recall_probe
from ..attention.softmax import softmax_attention
from . import palette
from .theme import caption_text, finish

MEMORIES = ("window (exact)", "sparse cache (exact)", "linear state")


def lola_memory_figure(length: int = 24, window: int = 4, sparse: int = 4, head_dim: int = 16,
                       seed: int = 0) -> go.Figure:
    """For every step t (row) and earlier token j (column): is (k_j, v_j) in the window, in the sparse
    cache, or folded into the linear state? The recall probe's sequence: pairs, then queries (values 0)."""
    n_pairs = length // 2
    _, k, v, _ = recall_probe(n_pairs, head_dim, seed=seed)
    trace = lola_memory_trace(k[0, 0], v[0, 0], window, sparse)
    L = trace.shape[0]
    where = {name: ([], []) for name in MEMORIES}
    for t in range(L):
        held = set(trace[t].tolist())
        for j in range(t + 1):
            name = MEMORIES[0] if j > t - window else MEMORIES[1] if j in held else MEMORIES[2]
            where[name][0].append(j)
            where[name][1].append(t)
    styles = palette.series_styles(list(MEMORIES))
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="markers", name=name,
                                marker=dict(symbol="square", size=7, color=style["color"]),
                                hovertemplate="step %{y}, token %{x}<extra>" + name + "</extra>")
                     for (name, (xs, ys)), style in zip(where.items(), styles)])
    fig.add_shape(type="line", x0=n_pairs - 0.5, x1=n_pairs - 0.5, y0=-0.5, y1=L - 0.5,
                  line=dict(color=palette.NEUTRALS["muted"], dash="dash", width=1))
    fig.update_xaxes(title="token j (pairs | queries)", range=[-0.7, L - 0.3])
    fig.update_yaxes(title="step t", autorange="reversed")
    sparse_held = [j for j in trace[-1].tolist() if 0 <= j <= L - 1 - window]    # in the cache, not the window
    pairs_kept, sparse_slots = sum(j < n_pairs for j in sparse_held), len(sparse_held)
    caption = caption_text(
        f"Where LoLA keeps each earlier token at every step, window {window}, sparse cache {sparse}, L = {L}: "
        f"{n_pairs} key–value pairs, then {L - n_pairs} queries whose values are 0 (right of the dashed line)",
        f"After the last step {pairs_kept} of the {sparse_slots} tokens in the sparse cache are pairs"
        + (": the query tokens, whose zero values the state's blurred average recalls better than a pair's "
           "value, are folded into the state first" if pairs_kept == sparse_slots == min(sparse, n_pairs) else ""))
    return finish(fig, "LoLA's three memories", caption, height=420)


def lola_recall_curves(sparse_sizes=(0, 2, 4, 8, 12, 16), n_pairs: int = 16, head_dim: int = 16, window: int = 4,
                       seeds=range(3), sharpness: float = 6.0) -> dict:
    """Recall error of the attention operator on :func:`~postlib.attention.lola.recall_probe` (mean over
    seeds): LoLA for each sparse-cache size, and softmax and linear (elu+1) attention for reference."""
    out = {"sparse": list(sparse_sizes), "n_pairs": n_pairs, "head_dim": head_dim, "window": window,
           "seeds": len(list(seeds)), "sharpness": sharpness, "lola": [], "softmax": 0.0, "linear": 0.0}
    probes = [recall_probe(n_pairs, head_dim, sharpness, s) for s in seeds]
    for q, k, v, asked in probes:
        out["softmax"] += recall_error(softmax_attention(q, k, v, causal=True), v, asked) / len(probes)
        out["linear"] += recall_error(linear_attention(q, k, v, causal=True), v, asked) / len(probes)
    out["lola, oldest out"] = []
    for size in sparse_sizes:
        for key, evict in (("lola", "recall"), ("lola, oldest out", "oldest")):
            out[key].append(float(np.mean([recall_error(lola_attention(q, k, v, window, size, evict=evict), v, asked)
                                           for q, k, v, asked in probes])))
    return out


def lola_recall_figure(sparse_sizes=(0, 2, 4, 8, 12, 16), n_pairs: int = 16, head_dim: int = 16, window: int = 4,
                       seeds=range(3), curves: dict | None = None) -> go.Figure:
    """Recall error against the sparse cache's size: LoLA moves from linear attention (no cache) to softmax
    attention (room for every pair)."""
    c = curves or lola_recall_curves(sparse_sizes, n_pairs, head_dim, window, seeds)
    xs = c["sparse"]
    fig = go.Figure([go.Scatter(x=xs, y=c["lola"], mode="lines+markers", name=f"LoLA (window {c['window']})",
                                line=dict(color=palette.color("lola"))),
                     go.Scatter(x=xs, y=c["lola, oldest out"], mode="lines+markers", name="LoLA, oldest pair out",
                                line=dict(color=palette.color("lola"), dash="dot"))])
    for name in ("softmax", "linear"):
        fig.add_trace(go.Scatter(x=[xs[0], xs[-1]], y=[c[name]] * 2, mode="lines",
                                 name=f"{name} attention", line=dict(color=palette.color(name), dash="dash")))
    fig.update_xaxes(title="sparse cache slots")
    fig.update_yaxes(title="recall error ‖y − v‖ / ‖v‖", rangemode="tozero")
    caption = caption_text(
        f"Associative recall by the attention operator alone (no training): {c['n_pairs']} random key–value "
        f"pairs in d = {c['head_dim']}, then one query for each (a matching score of "
        f"{c['sharpness'] ** 2 / c['head_dim'] ** 0.5:.0f}), mean over {c['seeds']} sequences. Error of the "
        f"output against the value asked for, for LoLA with a window of {c['window']} and each sparse-cache "
        f"size — evicting the pair its state recalls best (solid) or the oldest pair (dotted) — and for causal "
        f"softmax and linear (elu+1) attention",
        f"With no cache LoLA recalls like linear attention ({c['lola'][0]:.2f} against {c['linear']:.2f}); with "
        f"{xs[-1]} slots, {c['lola'][-1]:.2f} against softmax's {c['softmax']:.2f}")
    return finish(fig, "Recall vs sparse-cache size", caption)
