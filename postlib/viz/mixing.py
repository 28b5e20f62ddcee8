"""Figures of part 5 (gMLP, ConvMixer, RWKV), shared by chapters/05_mixing and the dashboard's Mixing page.

Pure builders, data in → ``go.Figure`` out, finished with :func:`postlib.viz.finish`:

* ``spatial_weights_figure`` — gMLP's spatial weights W (length × length), before and after training;
* ``receptive_field_figure`` — which inputs reach which outputs through a stack of causal convolutions;
* ``wkv_weights_figure`` — the weights each WKV output gives to the past, for one decay rate;
* ``wkv_state_figure`` — one WKV channel token by token (the frames of an animation);
* ``wkv_speed_figure``, ``decode_figure``, ``digits_figure`` — recorded or live measurements.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .._checks import check_positive_int
from . import palette
from .scaling import scaling_figure
from .theme import caption_text, coloraxis, finish, provenance_sentence


def _square(fig: go.Figure, row: int | None = None, col: int | None = None, x_title: str = "", y_title: str = ""):
    """Square heatmap axes, row 0 on top (CONTRIBUTING: scaleanchor + constrain="domain")."""
    kw = dict(row=row, col=col) if row is not None else {}
    x_ref = "x" if row is None or (row == 1 and col == 1) else f"x{col}"
    fig.update_xaxes(title_text=x_title, constrain="domain", **kw)
    fig.update_yaxes(title_text=y_title, autorange="reversed", scaleanchor=x_ref, constrain="domain", **kw)


# --------------------------------------------------------------------------- gMLP

def spatial_weights_figure(w_init, w_trained, *, lag: int | None = None, title: str = "gMLP's spatial weights",
                           caption: str | None = None, provenance: dict | None = None) -> go.Figure:
    """Two heatmaps on one diverging colour scale: W (row t = the weights output t gives to tokens s)
    at initialisation and after training; ``lag``, if given, is the task's lag (its subdiagonal)."""
    w0, w1 = np.asarray(w_init, dtype=float), np.asarray(w_trained, dtype=float)
    if w0.shape != w1.shape or w0.ndim != 2 or w0.shape[0] != w0.shape[1]:
        raise ValueError(f"w_init and w_trained must be square matrices of one shape, got {w0.shape} and {w1.shape}")
    L = w0.shape[0]
    bound = float(max(np.abs(w1).max(), np.abs(w0).max(), 1e-12))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("at initialisation", "after training"),
                        horizontal_spacing=0.14)
    for col, w in ((1, w0), (2, w1)):
        fig.add_trace(go.Heatmap(z=w, coloraxis="coloraxis", hovertemplate="output %{y}, token %{x}: %{z:.3g}"
                                 "<extra></extra>"), row=1, col=col)
        _square(fig, 1, col, x_title="token s", y_title="output t")
    coloraxis(fig, colorscale=palette.DIVERGING, title="W[t, s]", cmin=-bound, cmax=bound, cmid=0.0)
    parts = [f"gMLP's spatial weights W for L = {L} (causal: zero above the diagonal), on one colour scale",
             f"At initialisation |W| ≤ {np.abs(w0).max():.1e}, so the unit starts as the identity on its first half"]
    if lag is not None and 0 < lag < L:
        band = np.abs(w1).diagonal(-lag).sum() / max(np.abs(w1).sum(), 1e-300)
        parts.append(f"After training on a copy with lag {lag}, {band:.0%} of |W| lies on the {lag}th subdiagonal "
                     "(output t reads token t − lag)")
    return finish(fig, title, caption_text(caption or " ".join(p + "." for p in parts),
                                           provenance_sentence(provenance)), height=440)


# --------------------------------------------------------------------------- ConvMixer

def receptive_field_figure(depth: int, kernel_size: int = 5, length: int = 32, *,
                           title: str = "Receptive field of stacked convolutions", caption: str | None = None) -> go.Figure:
    """Heatmap: share of the paths from input s to output t through ``depth`` causal convolutions of
    size ``kernel_size`` (``postlib.mixing.convmixer.receptive_field_counts``, normalised per row)."""
    from ..mixing.convmixer import receptive_field, receptive_field_counts
    check_positive_int(length, "length")
    counts = receptive_field_counts(length, depth, kernel_size).double()
    share = counts / counts.sum(1, keepdim=True)
    fig = go.Figure(go.Heatmap(z=share.numpy(), coloraxis="coloraxis",
                               hovertemplate="output %{y}, input %{x}: %{z:.3f}<extra></extra>"))
    coloraxis(fig, title="share of paths", cmin=0.0)
    _square(fig, x_title="input position s", y_title="output position t")
    field = receptive_field(depth, kernel_size)
    default = (f"Which inputs reach which outputs through {depth} causal convolution{'s' if depth != 1 else ''} of "
               f"size k = {kernel_size}, L = {length}: each row is one output's share of the paths from every input. "
               f"An output sees depth·(k − 1) + 1 = {field} positions, a field that grows linearly with depth; "
               "the paths crowd in the middle of it, so the effective field is narrower")
    return finish(fig, title, caption_text(caption or default), height=440)


# --------------------------------------------------------------------------- RWKV

def _channel_keys(length: int, key_scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(length, generator=g, dtype=torch.float64) * key_scale


def wkv_weights_figure(decay: float, length: int = 24, bonus: float = 0.5, key_scale: float = 1.0, seed: int = 0, *,
                       title: str = "What each WKV output reads", caption: str | None = None) -> go.Figure:
    """Heatmap of one channel's normalised WKV weights (``postlib.recurrent.wkv.wkv_weights``): row t is
    output t's distribution over tokens i ≤ t, for decay rate ``decay`` (w) and bonus ``bonus`` (u), keys
    k ~ N(0, key_scale²) drawn with ``seed``."""
    from ..recurrent.wkv import wkv_weights
    if not decay > 0:
        raise ValueError(f"decay must be > 0 (the decay rate w), got {decay}")
    check_positive_int(length, "length")
    k = _channel_keys(length, key_scale, seed)
    w = torch.tensor([float(decay)], dtype=torch.float64)
    u = torch.tensor([float(bonus)], dtype=torch.float64)
    weights = wkv_weights(w, u, k.view(1, -1, 1))[0, 0].numpy()
    fig = go.Figure(go.Heatmap(z=weights, coloraxis="coloraxis",
                               hovertemplate="output %{y}, token %{x}: %{z:.3f}<extra></extra>"))
    coloraxis(fig, title="weight", cmin=0.0, cmax=1.0)
    _square(fig, x_title="token i", y_title="output t")
    half_life = np.log(2) / decay
    default = (f"One WKV channel: decay w = {decay:g} (a token's weight halves every {half_life:.2g} tokens), bonus "
               f"u = {bonus:g}, keys ~ N(0, {key_scale:g}²), L = {length}. Row t is output t's weights over the tokens "
               "i ≤ t: e^{k_i − (t−1−i)w} for the past and e^{u + k_t} for the token itself, normalised")
    return finish(fig, title, caption_text(caption or default), height=440)


def wkv_state_figure(t: int, trace: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """One frame of a WKV channel at token ``t`` (``trace`` from ``postlib.recurrent.wkv_trace.wkv_trace``):
    top, output t's weights over the tokens (bars) and the values v; bottom, the state's numerator
    |a|·e^p and denominator b·e^p (log scale) after each token up to t."""
    L = len(trace["output"])
    if not 0 <= int(t) < L:
        raise ValueError(f"t must be in [0, {L}), got {t}")
    t = int(t)
    tokens = np.arange(L)
    weights = np.exp(trace["log_weights"][t] - np.max(trace["log_weights"][t]))
    weights = np.where(tokens <= t, weights / weights.sum(), 0.0)
    seen = tokens <= t
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.16,
                        subplot_titles=("weights of output t", "state after each token (log)"))
    fig.add_trace(go.Bar(x=tokens, y=weights, name="weight of token i", marker_color=palette.color("rwkv")),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=tokens, y=trace["v"], mode="markers", name="value v_i",
                             marker=dict(color=palette.NEUTRALS["muted"], size=6)), row=1, col=1)
    styles = palette.series_styles(["numerator |a|·e^p", "denominator b·e^p"])
    for key, name, style in (("log_num_abs", "numerator |a|·e^p", styles[0]), ("log_den", "denominator b·e^p", styles[1])):
        y = np.where(seen, np.exp(np.clip(trace[key], -700, 700)), np.nan)
        fig.add_trace(go.Scatter(x=tokens, y=y, mode="lines+markers", name=name, line=style), row=2, col=1)
    # Both y ranges come from the whole trace, not from the tokens seen by t: every frame of an animation
    # (frames_figure) then shares its axes and their tick labels, instead of rescaling token by token.
    log_w = trace["log_weights"]
    all_w = np.exp(log_w - np.max(log_w, axis=1, keepdims=True))
    all_w = all_w / all_w.sum(axis=1, keepdims=True)
    lo, hi = min(0.0, float(np.min(trace["v"]))), max(float(np.max(all_w)), float(np.max(trace["v"])))
    pad = 0.06 * (hi - lo or 1.0)
    fig.update_yaxes(title_text="weight, value", range=[lo - pad, hi + pad], row=1, col=1)
    sums = np.concatenate([trace["log_num_abs"], trace["log_den"]])
    sums = np.clip(sums[np.isfinite(sums)], -700, 700) / np.log(10)      # a zero numerator (log −inf) is not drawn
    log_range = [float(sums.min()) - 0.15, float(sums.max()) + 0.15] if sums.size else None
    fig.update_yaxes(title_text="sum", type="log", range=log_range, row=2, col=1)
    fig.update_xaxes(title_text="token i", row=2, col=1)
    fig.update_xaxes(range=[-0.5, L - 0.5])
    default = (f"One WKV channel, w = {trace['w']:g}, u = {trace['u']:g}, {L} tokens. Top: the weights output t gives "
               "to tokens i ≤ t (bars) beside the values v_i (dots): wkv_t is their weighted average. Bottom: the "
               "RNN's numerator and denominator after each token; every step multiplies them by e^{−w} and adds "
               "the new token's e^{k}(v, 1)")
    out = float(trace["output"][t])
    return finish(fig, title or f"Token {t}: wkv = {out:.2f}", caption_text(caption or default), height=520)


def rwkv6_decay_figure(log_decays: dict, *, marks=(), title: str = "What the state still holds",
                       caption: str | None = None) -> go.Figure:
    """One heatmap per entry of ``log_decays`` ({label: (length,) log decays of one key channel}), on one
    scale: row t, column i is Π_{j=i+1}^{t−1} w_j (``postlib.recurrent.rwkv6.rwkv6_past_weights``), the
    factor on token i's k_iᵀv_i in the state output t reads. ``marks``: tokens to draw a line at (the
    tokens that set a data-dependent decay, say)."""
    from ..recurrent.rwkv6 import rwkv6_past_weights
    if not log_decays:
        raise ValueError("log_decays must hold at least one {label: (length,) log decays} entry")
    curves = {label: torch.as_tensor(np.asarray(x, dtype=float)) for label, x in log_decays.items()}
    lengths = {len(c) for c in curves.values()}
    if len(lengths) != 1 or any(c.dim() != 1 or bool((c > 0).any()) for c in curves.values()):
        raise ValueError("every entry of log_decays must be one channel's (length,) log decays <= 0, all one length")
    L = lengths.pop()
    marks = [int(m) for m in marks if 0 <= int(m) < L]
    fig = make_subplots(rows=1, cols=len(curves), subplot_titles=list(curves), horizontal_spacing=0.12)
    for col, c in enumerate(curves.values(), start=1):
        fig.add_trace(go.Heatmap(z=rwkv6_past_weights(c).numpy(), coloraxis="coloraxis",
                                 hovertemplate="output %{y}, token %{x}: %{z:.3g}<extra></extra>"), row=1, col=col)
        _square(fig, 1, col, x_title="token i", y_title="output t")
        for m in marks:
            fig.add_vline(x=m, line=dict(color=palette.NEUTRALS["paper"], dash="dot", width=1), row=1, col=col)
    coloraxis(fig, title="kept", cmin=0.0, cmax=1.0)
    where = f" Dotted: token{'s' if len(marks) > 1 else ''} {', '.join(map(str, marks))}." if marks else ""
    default = (f"One key channel over L = {L} tokens: how much of token i the state still holds when output t "
               "reads it, Π_{j=i+1}^{t−1} w_j (1 just below the diagonal; 0 on and above it, where the current "
               f"token enters through the bonus instead).{where}")
    return finish(fig, title, caption_text(caption or default), height=440)


def wkv_speed_figure(rows, *, provenance: dict | None = None, title: str = "WKV: parallel form vs loop",
                     caption: str | None = None) -> go.Figure:
    """Forward time against length of the loop and the parallel form (rows of ``wkv-speed``), log-log."""
    renamed = {"wkv recurrent (loop)": "loop (RNN, one token a step)", "wkv parallel": "parallel (chunked)"}
    rows = [dict(r, name=renamed.get(r["name"], r["name"])) for r in rows]
    default = ("Forward time of one WKV call against the sequence length, log-log: the loop takes one small step per "
               "token, the parallel form a few large ones per chunk; the legend gives each fitted exponent")
    return scaling_figure(rows, "time_ms", title=title, provenance=provenance, caption=caption or default)


def decode_figure(rows, *, provenance: dict | None = None, title: str = "Decoding one token",
                  caption: str | None = None) -> go.Figure:
    """Two panels against the context length (rows of ``rwkv-decode``): time per token and the state
    kept between tokens, for RWKV's constant state and softmax attention's KV cache (log-log)."""
    ok = [r for r in rows if str(r.get("status", "ok")) == "ok"]
    names = list(dict.fromkeys(r["name"] for r in ok))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("time per token", "state kept"), horizontal_spacing=0.16)
    for name, style in zip(names, palette.series_styles(names)):
        pts = sorted((r["length"], r["time_ms"], r.get("state_bytes")) for r in ok if r["name"] == name)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=style, legendgroup=name), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[2] / 2**10 for p in pts], mode="lines+markers",
                                 name=name, line=style, legendgroup=name, showlegend=False), row=1, col=2)
    for col, label in ((1, "ms per token (median)"), (2, "KiB kept between tokens")):
        fig.update_xaxes(type="log", title_text="context length (tokens)", row=1, col=col)
        fig.update_yaxes(type="log", title_text=label, row=1, col=col)
    default = ("Producing one token after a context of n tokens, batch 1: RWKV's step reads a state of fixed size, "
               "softmax attention's step reads (and here copies) a KV cache of n keys and values")
    return finish(fig, title, caption_text(caption or default, provenance_sentence(provenance)), height=440)


def digits_figure(curves: dict, *, provenance: dict | None = None, title: str = "ConvMixer vs a patch Transformer",
                  caption: str | None = None) -> go.Figure:
    """Test accuracy against training time, one line per model: ``curves[name]`` is a list of dicts
    with ``seconds`` and ``test_accuracy`` (the ``curves`` of ``convmixer-digits``), or of
    ``(epoch, seconds, loss, accuracy)`` tuples (``ImageTrainResult.curve``)."""
    fig = go.Figure()
    for (name, pts), style in zip(curves.items(), palette.series_styles(list(curves))):
        pts = [p if isinstance(p, dict) else dict(seconds=p[1], test_accuracy=p[3]) for p in pts]
        fig.add_trace(go.Scatter(x=[p["seconds"] for p in pts], y=[p["test_accuracy"] for p in pts],
                                 mode="lines+markers", name=name, line=style))
    fig.update_xaxes(title_text="training time (s)")
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    default = ("Held-out accuracy on scikit-learn's 8×8 digits against training time, one point per epoch: both "
               "models share the patch embedding (2×2 patches, 16 tokens) and the head, and differ in the token mixer")
    return finish(fig, title, caption_text(caption or default, provenance_sentence(provenance)))
