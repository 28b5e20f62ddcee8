"""Figures for Performer's random features (the kernel-attention chapter).

Pure builders: sizes in, ``go.Figure`` out. The measurements they plot come from
``postlib.attention.performer``; the ``*_curves`` functions return those numbers,
so a page can assert what it says about a figure on the same data the figure shows.

* :func:`favor_unbiasedness_figure` — single draws of φ(x)ᵀφ(y) and their running means;
* :func:`favor_error_curves` / :func:`favor_error_figure` — output MSE against m (cf. the paper's Fig. 3);
* :func:`favor_bias_curves` / :func:`favor_bias_figure` — averaging draws: the ratio is biased;
* :func:`favor_stability_curves` / :func:`favor_stability_figure` — raw vs stabilised features at large norms.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..attention.linear import linear_attention_features
from ..attention.performer import (favor_draws, gaussian_projection, kernel_estimate, performer_attention,
                                   performer_reference, softmax_kernel_features)
from . import palette
from .approx import demo_qk
from .theme import caption_text, finish

KERNEL_LABELS = ("positive", "trig")


def _demo(length: int, head_dim: int):
    q, k = demo_qk(length, head_dim, 0)
    v = torch.randn(1, 1, length, head_dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return q, k, v, torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), -1) @ v


def favor_unbiasedness_figure(num_features: int = 8, draws: int = 2000, dim: int = 16, scale: float = 0.4,
                              seed: int = 0) -> go.Figure:
    """Histogram of single-draw estimates φ(x)ᵀφ(y) of exp(xᵀy) (positive vs trig) and their running means."""
    g = torch.Generator().manual_seed(seed)
    x, y = (torch.randn(dim, generator=g, dtype=torch.float64) * scale for _ in range(2))
    target = math.exp(float(x @ y))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=(f"{draws} single draws", "running mean over draws"))
    colors = dict(zip(KERNEL_LABELS, palette.series_colors(list(KERNEL_LABELS))))
    stds = {}
    for kernel in KERNEL_LABELS:
        est = np.array([kernel_estimate(x, y, num_features, kernel, False, seed=s).item() for s in range(draws)])
        stds[kernel] = float(est.std())
        fig.add_trace(go.Histogram(x=est, name=f"{kernel} features", opacity=0.6, nbinsx=60, legendgroup=kernel,
                                   marker_color=colors[kernel]), 1, 1)
        fig.add_trace(go.Scatter(x=np.arange(1, draws + 1), y=np.cumsum(est) / np.arange(1, draws + 1),
                                 name=f"{kernel} mean", legendgroup=kernel, showlegend=False,
                                 line=dict(color=colors[kernel])), 1, 2)
    exact = dict(color=palette.NEUTRALS["ink"], dash="dash", width=1.5)
    fig.add_vline(x=target, line=exact, row=1, col=1)
    fig.add_trace(go.Scatter(x=[1, draws], y=[target, target], mode="lines", name="exact exp(xᵀy)", line=exact), 1, 2)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="estimate φ(x)ᵀφ(y)", row=1, col=1)
    fig.update_yaxes(title="draws (count)", row=1, col=1)
    fig.update_xaxes(type="log", title="number of draws", row=1, col=2)
    fig.update_yaxes(title="running mean", row=1, col=2)
    caption = caption_text(
        f"Single-draw estimates φ(x)ᵀφ(y) of exp(xᵀy) = {target:.3f} (dashed) with m = {num_features} iid random "
        f"features in d = {dim}, |x| ≈ |y| ≈ {scale * math.sqrt(dim):.1f}: histogram of {draws} draws (left) and "
        f"their running means (right)",
        f"Both kernels are unbiased; here the positive features' spread is {stds['positive']:.2f} against "
        f"{stds['trig']:.2f} for the trigonometric ones")
    return finish(fig, "FAVOR+ is unbiased", caption, height=380)


def favor_error_curves(num_features=(4, 8, 16, 32, 64, 128, 256), length: int = 64, head_dim: int = 16,
                       seeds=range(6)) -> dict:
    """MSE of Performer's output against softmax attention on the demo queries (``demo_qk``, |q| ≈ 3), mean
    over seeds: ``{"m": [...], "positive, orthogonal": [...], "positive, iid": [...], "trig, ...": [...]}``."""
    q, k, v, ref = _demo(length, head_dim)
    curves = {"m": list(num_features), "length": length, "head_dim": head_dim, "seeds": len(list(seeds))}
    for kernel in KERNEL_LABELS:
        for orth in (True, False):
            curves[f"{kernel}, {'orthogonal' if orth else 'iid'}"] = [
                float(np.mean([(performer_attention(q, k, v, m, kernel=kernel, orthogonal=orth, seed=s) - ref)
                               .pow(2).mean().item() for s in seeds])) for m in num_features]
    return curves


def favor_error_figure(num_features=(4, 8, 16, 32, 64, 128, 256), length: int = 64, head_dim: int = 16,
                       seeds=range(6), curves: dict | None = None) -> go.Figure:
    """MSE of the attention output against softmax vs m: positive/trig × orthogonal/iid (cf. the paper's Fig. 3).
    ``curves`` (from :func:`favor_error_curves`) skips the measurement."""
    curves = curves or favor_error_curves(num_features, length, head_dim, seeds)
    ms = curves["m"]
    colors = dict(zip(KERNEL_LABELS, palette.series_colors(list(KERNEL_LABELS))))
    fig = go.Figure()
    for kernel in KERNEL_LABELS:
        for orth in ("orthogonal", "iid"):
            fig.add_trace(go.Scatter(x=ms, y=curves[f"{kernel}, {orth}"], mode="lines+markers",
                                     name=f"{kernel}, {orth}",
                                     line=dict(color=colors[kernel], dash="solid" if orth == "orthogonal" else "dot")))
    fig.update_xaxes(type="log", title="random features m")
    fig.update_yaxes(type="log", title="MSE vs softmax attention")
    pos, trig = np.array(curves["positive, orthogonal"]), np.array(curves["trig, orthogonal"])
    big = np.array(ms) >= 64
    parts = [f"Mean squared error of Performer's output against exact softmax attention on structured queries "
             f"and keys (|q| ≈ 3), L = {curves['length']}, d = {curves['head_dim']}, mean of {curves['seeds']} "
             f"draws: positive or trigonometric features, orthogonal (solid) or iid (dotted) projections "
             f"(cf. the paper's Fig. 3)",
             f"At m = {ms[0]} the trigonometric error is {trig[0] / pos[0]:,.0f}× the positive one"]
    if big.any():
        ratio = pos[big] / trig[big]
        parts.append(f"From m = 64 on, the positive error is {ratio.min():.1f}× to {ratio.max():.1f}× the "
                     f"trigonometric one")
    return finish(fig, "Performer error vs number of features", caption_text(*parts))


def favor_bias_curves(num_features: int = 16, draws: int = 1000, length: int = 64, head_dim: int = 16) -> dict:
    """Relative error against softmax attention after averaging n draws, for n = 1..draws (demo queries):
    ``"outputs"`` — the average of the n FAVOR+ outputs N_s/D_s; ``"ratio"`` — the ratio of the averaged
    numerators and denominators; ``"numerator"`` — the averaged numerator against the exact one."""
    q, k, v, ref = _demo(length, head_dim)
    nums, dens = favor_draws(q[0, 0], k[0, 0], v[0, 0], num_features, draws)
    A = torch.exp(q[0, 0] @ k[0, 0].T / math.sqrt(head_dim))
    exact_num = A @ v[0, 0]
    n = torch.arange(1, draws + 1, dtype=torch.float64)[:, None, None]
    mean_out = torch.cumsum(nums / dens[..., None], 0) / n
    mean_num, mean_den = torch.cumsum(nums, 0) / n, torch.cumsum(dens, 0) / n[..., 0]
    rel = lambda x, y: ((x - y).flatten(1).norm(dim=1) / y.norm()).numpy()  # noqa: E731
    single = (nums / dens[..., None] - ref[0, 0]).flatten(1).norm(dim=1) / ref[0, 0].norm()
    return {"draws": np.arange(1, draws + 1), "num_features": num_features, "length": length, "head_dim": head_dim,
            "outputs": rel(mean_out, ref[0, 0]), "ratio": rel(mean_num / mean_den[..., None], ref[0, 0]),
            "numerator": rel(mean_num, exact_num), "single": single.numpy()}


def favor_bias_figure(num_features: int = 16, draws: int = 1000, length: int = 64, head_dim: int = 16,
                      curves: dict | None = None) -> go.Figure:
    """Averaging draws of ω: the average of the outputs stalls at the ratio's bias, while the ratio of the
    averaged (unbiased) numerator and denominator converges to softmax attention."""
    c = curves or favor_bias_curves(num_features, draws, length, head_dim)
    x = c["draws"]
    names = ["average of the outputs N/D", "ratio of the averages ΣN/ΣD", "averaged numerator vs exact"]
    styles = palette.series_styles(names)
    fig = go.Figure([go.Scatter(x=x, y=c[key], mode="lines", name=name, line=style)
                     for key, name, style in zip(("outputs", "ratio", "numerator"), names, styles)])
    fig.add_trace(go.Scatter(x=x, y=c["single"], mode="markers", name="one draw",
                             marker=dict(color=palette.NEUTRALS["context"], size=3)))
    fig.update_xaxes(type="log", title="draws of ω averaged")
    fig.update_yaxes(type="log", title="relative error")
    caption = caption_text(
        f"Relative error against softmax attention after averaging n independent draws of the projection ω "
        f"(m = {c['num_features']} positive orthogonal features, structured queries and keys with |q| ≈ 3, "
        f"L = {c['length']}, d = {c['head_dim']}; grey: each draw alone)",
        f"After {x[-1]} draws the average of the outputs is still {c['outputs'][-1]:.2f} away, the ratio of the "
        f"averaged numerators and denominators {c['ratio'][-1]:.2f}, and the averaged numerator "
        f"{c['numerator'][-1]:.2f} from its exact value")
    return finish(fig, "Averaging draws: the ratio is biased", caption)


def favor_stability_curves(scales=(1, 2, 4, 8, 16, 32), length: int = 48, head_dim: int = 16,
                           num_features: int = 64, dtype=torch.float32) -> dict:
    """Relative error against the (log-domain, exact) FAVOR+ reference when q and k are multiplied by each
    scale: raw features through linear attention vs the stabilised forms, causal and not, in ``dtype``."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, length, head_dim, generator=g, dtype=torch.float64) for _ in range(3))
    w = gaussian_projection(num_features, head_dim, seed=0)
    t = head_dim ** -0.25
    out = {"scales": list(scales), "length": length, "head_dim": head_dim, "num_features": num_features,
           "dtype": str(dtype).replace("torch.", "")}
    for causal in (False, True):
        tag = "causal" if causal else "non-causal"
        raw, ours = [], []
        for s in scales:
            ref = performer_reference(s * q, s * k, v, w, causal)
            qs, ks, vs = (x.to(dtype) for x in (s * q, s * k, v))
            plain = linear_attention_features(softmax_kernel_features(qs * t, w.to(dtype)),
                                              softmax_kernel_features(ks * t, w.to(dtype)), vs, causal=causal)
            stable = performer_attention(qs, ks, vs, num_features, causal=causal, projection=w.to(dtype))
            rel = lambda x: float((x.double() - ref).norm() / ref.norm())  # noqa: E731
            raw.append(rel(plain))
            ours.append(rel(stable))
        out[f"raw features, {tag}"], out[f"stabilised, {tag}"] = raw, ours
    return out


def favor_stability_figure(scales=(1, 2, 4, 8, 16, 32), length: int = 48, head_dim: int = 16,
                           num_features: int = 64, curves: dict | None = None) -> go.Figure:
    """Raw FAVOR+ features collapse at large norms (the features underflow and eps takes over); shifts that
    cancel in the normalisation keep the output exact."""
    c = curves or favor_stability_curves(scales, length, head_dim, num_features)
    names = [key for key in c if key.startswith(("raw", "stabilised"))]
    fig = go.Figure()
    colors = dict(zip(("raw", "stabilised"), palette.series_colors(["raw features", "stabilised"])))
    for name in names:
        color = colors[name.split()[0].rstrip(",")]
        fig.add_trace(go.Scatter(x=c["scales"], y=np.maximum(c[name], 1e-9), mode="lines+markers", name=name,
                                 line=dict(color=color, dash="dot" if "non-causal" in name else "solid")))
    fig.update_xaxes(type="log", title="q and k multiplied by")
    fig.update_yaxes(type="log", title="relative error vs the exact estimate")
    caption = caption_text(
        f"Relative error of FAVOR+ outputs against the same estimate computed exactly (from the logarithms of "
        f"the weights) as q and k grow, {c['dtype']}, m = {c['num_features']}, L = {c['length']}, d = "
        f"{c['head_dim']}, causal (solid) and non-causal (dotted); errors below 1e-9 are drawn at 1e-9",
        f"At ×{c['scales'][-1]} the raw features are {c['raw features, causal'][-1]:.2f} (causal) and "
        f"{c['raw features, non-causal'][-1]:.2f} away, the stabilised forms "
        f"{max(c['stabilised, causal'][-1], c['stabilised, non-causal'][-1]):.0e}")
    return finish(fig, "Stabilising FAVOR+ at large norms", caption)
