"""Figures for the state-space chapter and the "State spaces" dashboard page (pure: data in, Figure out)."""
from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..ssm.discretize import METHODS, discrete_eigenvalue
from ..ssm.hippo import demo_signal, hippo_online, reconstruct, reconstruction_window
from . import palette
from .theme import caption_text, coloraxis, finish, provenance_sentence

METHOD_STYLES = dict(zip(METHODS, palette.series_styles(METHODS)))
# Node colours of the scan tree: a segment summary, a finished state, not computed yet.
SEGMENT_COLOR, FINAL_COLOR, PENDING_COLOR = palette.SERIES[0], palette.SERIES[2], palette.NEUTRALS["faint"]


def default_eigenvalues() -> np.ndarray:
    """Continuous eigenvalues to map: S4D-Lin's −½ + iπn (and conjugates) and S4D-Real's −(n+1)."""
    n = np.arange(8)
    lin = -0.5 + 1j * np.pi * n
    return np.concatenate([lin, lin.conj()[1:], -(n + 1.0)])


def eigenvalue_map(dt: float = 0.1, lam=None, methods=METHODS) -> go.Figure:
    """Where each discretization sends the continuous eigenvalues λ (left: Δλ; right: Ā's eigenvalues vs the unit circle).

    The title counts the unstable modes of each method that has any ("Δ = 1: unstable modes: euler 15"),
    so the caption holds for every Δ of an animation.
    """
    lam = default_eigenvalues() if lam is None else np.asarray(lam, dtype=complex)
    fig = make_subplots(1, 2, subplot_titles=("continuous: Δ·λ", "discrete: eigenvalues of Ā"),
                        horizontal_spacing=0.14)
    fig.add_trace(go.Scatter(x=(dt * lam).real, y=(dt * lam).imag, mode="markers", name="Δλ",
                             marker=dict(color=palette.NEUTRALS["ink"], size=7)), 1, 1)
    theta = np.linspace(0, 2 * np.pi, 200)
    fig.add_trace(go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", name="unit circle",
                             line=dict(color=palette.NEUTRALS["context"], dash="dot")), 1, 2)
    unstable = []
    for m in methods:
        z = discrete_eigenvalue(lam, dt, m)
        n_out = int((np.abs(z) > 1 + 1e-12).sum())
        if n_out:
            unstable.append(f"{m} {n_out}")
        style = METHOD_STYLES.get(m) or palette.series_styles([m])[0]
        fig.add_trace(go.Scatter(x=z.real, y=z.imag, mode="markers", name=m,
                                 marker=dict(color=style["color"], size=8, symbol="circle-open", line=dict(width=2))),
                      1, 2)
    fig.update_xaxes(range=[-3.5, 0.5], title_text="Re(Δλ)", row=1, col=1)
    fig.update_yaxes(range=[-3.5, 3.5], title_text="Im(Δλ)", row=1, col=1)
    fig.update_xaxes(range=[-2.2, 2.2], title_text="Re z", constrain="domain", row=1, col=2)
    fig.update_yaxes(range=[-2.2, 2.2], title_text="Im z", scaleanchor="x2", constrain="domain", row=1, col=2)
    caption = caption_text(
        f"Left: {len(lam)} continuous eigenvalues λ scaled by the step Δ (stable when Re < 0). Right: where each of "
        f"the {len(methods)} discretizations sends them, the eigenvalues z of Ā (stable inside the unit circle "
        f"|z| = 1). Points off the axes' range are not drawn",
        "The title counts, at the Δ shown, the modes each rule makes unstable (|z| > 1); rules it does not name "
        "keep every mode stable")
    title = f"Δ = {dt:.3g}: unstable modes: " + (", ".join(unstable) if unstable else "none")
    return finish(fig, title, caption, height=440)


@functools.lru_cache(maxsize=32)
def _hippo_run(kind: str, N: int, signal: str, L: int):
    sig = demo_signal(signal, L)
    dt = 1.0 / L if kind == "legs" else 3.0 / L       # translated measures: a window of a third of the signal
    return sig, hippo_online(kind, N, sig, dt), dt


def hippo_reconstruction(step: int = 200, kind: str = "legs", N: int = 16, signal: str = "sines", L: int = 400) -> go.Figure:
    """The signal so far and what HiPPO's N coefficients rebuild of it at time ``step``."""
    step = int(min(max(step, 1), L))
    sig, coeffs, dt = _hippo_run(kind, N, signal, L)
    times = np.arange(1, L + 1)
    t_h = step * dt                                     # HiPPO time
    lo, hi = reconstruction_window(kind, t_h)
    s = np.linspace(max(lo, dt), hi, 300)
    rec = reconstruct(kind, coeffs[step - 1], t_h, s)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=times, y=sig, mode="lines", name="whole signal",
                             line=dict(color=palette.NEUTRALS["faint"])))
    fig.add_trace(go.Scatter(x=times[:step], y=sig[:step], mode="lines", name="seen so far",
                             line=dict(color=palette.NEUTRALS["ink"])))
    fig.add_trace(go.Scatter(x=s / dt, y=rec, mode="lines", name="rebuilt from N numbers",
                             line=dict(color=palette.color("s4"), width=3)))
    err = np.sqrt(np.mean((rec - np.interp(s / dt, times, sig)) ** 2))
    fig.update_xaxes(range=[0, L], title_text="time step")
    fig.update_yaxes(range=[-2.2, 2.2], title_text="signal")
    caption = caption_text(
        f"The {signal} signal seen so far (black) and what HiPPO-{kind.upper()} rebuilds of it from its N "
        f"coefficients (green), over {L} steps; the title gives N, the step and the RMS error over the rebuilt part",
        "LegS rebuilds the whole history; LegT and LagT a recent window")
    # Legend under the plot at every width: three long entries on the right leave a narrow page's plot (and
    # the animation's slider, drawn before the phone layout applies) a few dozen pixels.
    return finish(fig, f"HiPPO-{kind.upper()}, N = {N}, step {step}: RMS error {err:.3f}", caption, height=380,
                  legend="bottom")


def memory_figure(delays, curves: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """R² of reading u_{t−τ} out of the state, against the delay τ, one line per transition matrix."""
    fig = go.Figure()
    for (name, r2), style in zip(curves.items(), palette.series_styles(list(curves))):
        fig.add_trace(go.Scatter(x=list(delays), y=list(r2), mode="lines+markers", name=name, line=style))
    fig.update_xaxes(title_text="delay τ (steps)")
    fig.update_yaxes(title_text="R² of the readout", range=[-0.05, 1.05])
    default = ("How well the best linear readout of the state recovers the input u(t − τ), against the delay τ, "
               "one line per transition matrix (R² = 1: perfectly remembered)")
    return finish(fig, title or "How long does the state remember?", caption_text(caption or default))


def kernels_figure(kernels: dict, title: str = "SSM convolution kernels", *, caption: str | None = None) -> go.Figure:
    """One line per kernel (1-D arrays), e.g. a few channels of S4 and S4D at initialisation."""
    fig = go.Figure()
    for (name, k), style in zip(kernels.items(), palette.series_styles(list(kernels))):
        k = np.asarray(k)
        fig.add_trace(go.Scatter(x=np.arange(len(k)), y=k, mode="lines", name=name, line=style))
    fig.update_xaxes(title_text="lag l")
    fig.update_yaxes(title_text="kernel value K_l")
    default = ("The convolution kernel K_l = C Ā^l B̄ of each channel against the lag l: how strongly the input "
               "l steps ago enters the output")
    return finish(fig, title, caption_text(caption or default))


def scan_tree(step: int = 0, L: int = 8) -> go.Figure:
    """The parallel scan on L = 2^K inputs, one phase per ``step`` (0 … 2K).

    Steps 1…K (up): neighbours combine, (a₂, b₂)∘(a₁, b₁) = (a₂a₁, a₂b₁ + b₂), halving the length.
    Steps K+1…2K (down): each level's even nodes take the previous odd node's finished state.
    """
    K = int(round(math.log2(L)))
    if 2 ** K != L:
        raise ValueError(f"L must be a power of two for the drawing, got {L}")
    pos = lambda lvl, k: (k + 1) * 2 ** lvl - 1       # a node sits above the last element it summarises
    up_x, up_y, down_x, down_y = [], [], [], []
    nx, ny, ncol, ntext = [], [], [], []
    finished_level = 2 * K - step if step > K else K + 1       # down-sweep step K+d finishes level K−d
    for lvl in range(K + 1):
        for k in range(L >> lvl):
            nx.append(pos(lvl, k))
            ny.append(lvl)
            if lvl >= finished_level or (step >= K and lvl == K):
                ncol.append(FINAL_COLOR)
                ntext.append("h final")
            elif lvl <= step:
                ncol.append(SEGMENT_COLOR)
                ntext.append(f"segment [{k * 2 ** lvl}, {pos(lvl, k)}]")
            else:
                ncol.append(PENDING_COLOR)
                ntext.append("not yet")
    for lvl in range(1, min(step, K) + 1):
        for k in range(L >> lvl):
            for child in (2 * k, 2 * k + 1):
                up_x += [pos(lvl - 1, child), pos(lvl, k), None]
                up_y += [lvl - 1, lvl, None]
    for d in range(1, max(0, step - K) + 1):
        lvl = K - d                                      # filling level lvl from level lvl + 1
        for k in range(1, (L >> lvl) // 2):
            down_x += [pos(lvl + 1, k - 1), pos(lvl, 2 * k), None]
            down_y += [lvl + 1, lvl, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=up_x or [None], y=up_y or [None], mode="lines", name="combine (up)",
                             line=dict(color=SEGMENT_COLOR, width=2)))
    fig.add_trace(go.Scatter(x=down_x or [None], y=down_y or [None], mode="lines", name="fill in (down)",
                             line=dict(color=FINAL_COLOR, width=2, dash="dash")))
    fig.add_trace(go.Scatter(x=nx, y=ny, mode="markers", name="nodes", text=ntext, hoverinfo="text", showlegend=False,
                             marker=dict(color=ncol, size=16, line=dict(color=palette.NEUTRALS["ink"], width=1))))
    phase = "inputs (a_t, b_t)" if step == 0 else (f"up-sweep level {step}" if step <= K else f"down-sweep to level {2 * K - step}")
    fig.update_xaxes(title_text="time t", range=[-0.7, L - 0.3], dtick=1)
    fig.update_yaxes(title_text="level", range=[-0.5, K + 0.5], dtick=1)
    caption = caption_text(
        f"The parallel scan on L = {L} inputs (a_t, b_t), one phase per step. Up-sweep: neighbours combine, "
        f"(a₂, b₂)∘(a₁, b₁) = (a₂a₁, a₂b₁ + b₂), halving the length. Down-sweep: each level's even nodes take "
        f"the previous odd node's finished state",
        "Blue nodes hold a segment's summary, green nodes a finished state h_t, grey nodes are not computed yet")
    return finish(fig, f"Parallel scan, step {step}/{2 * K}: {phase}", caption, height=380)


def hidden_state_figure(t: int, traj: dict, u) -> go.Figure:
    """Input and Δ_t (top), then the LTI (S4D) and selective (Mamba) states up to time t (heatmaps, one colour scale)."""
    u = np.asarray(u)
    L, N = traj["lti"].shape
    t = int(min(max(t, 1), L))
    fig = make_subplots(3, 1, shared_xaxes=True, vertical_spacing=0.09, row_heights=[0.3, 0.35, 0.35],
                        subplot_titles=("input u_t and step Δ_t", "S4D state (Δ fixed)",
                                        "Mamba state (Δ_t from the input)"))
    steps = np.arange(L)
    fig.add_trace(go.Scatter(x=steps, y=u, mode="lines", name="input u_t", line=dict(color=palette.NEUTRALS["ink"])),
                  1, 1)
    d = traj["delta"]
    fig.add_trace(go.Scatter(x=steps, y=d / max(d.max(), 1e-12), mode="lines", name="Δ_t (scaled)",
                             line=dict(color=palette.color("mamba"))), 1, 1)
    fig.add_trace(go.Scatter(x=[t - 1, t - 1], y=[-1.2, 1.2], mode="lines", name="now",
                             line=dict(color=palette.NEUTRALS["context"], dash="dot")), 1, 1)
    vmax = max(np.abs(traj["lti"]).max(), np.abs(traj["selective"]).max(), 1e-9)
    coloraxis(fig, colorscale=palette.DIVERGING, title="state x_t", cmin=-vmax, cmax=vmax)
    for row, key in ((2, "lti"), (3, "selective")):
        z = traj[key].T.copy()
        z[:, t:] = np.nan
        fig.add_trace(go.Heatmap(z=z, x=steps, y=np.arange(N), coloraxis="coloraxis", name=key,
                                 hovertemplate="t %{x}, n %{y}: %{z:.3f}<extra></extra>"), row, 1)
        fig.update_yaxes(title_text="state n", row=row, col=1)
    fig.update_yaxes(title_text="u_t, Δ_t", range=[-1.25, 1.25], row=1, col=1)
    fig.update_xaxes(title_text="time step t", row=3, col=1)
    caption = caption_text(
        f"Top: the input u_t and Mamba's step Δ_t (scaled to its maximum); the dotted line marks now. Middle and "
        f"bottom: the N = {N} state channels of S4D (one fixed Δ) and of Mamba (Δ_t computed from the input) up "
        f"to now, on one colour scale",
        "Where Δ_t is small the selective state holds still; the fixed-Δ state blurs every input together")
    return finish(fig, f"Hidden states up to t = {t}", caption, height=560)


def crossover_figure(rows, x_key: str = "states", title: str = "Scan time vs state size", *,
                     caption: str | None = None, provenance: dict | None = None) -> go.Figure:
    """Time (ms) of each backend against dim × N (log-log), from the crossover benchmark's rows."""
    fig = go.Figure()
    names = list(dict.fromkeys(r["name"] for r in rows))
    for name, style in zip(names, palette.series_styles(names)):
        pts = sorted((r[x_key], r["time_ms"]) for r in rows if r["name"] == name and r.get("status", "ok") == "ok")
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=style))
    fig.update_xaxes(type="log", title_text="dim × N (state size per step)")
    fig.update_yaxes(type="log", title_text="time (ms, median)")
    default = "Forward time of each scan backend against the state size per step, log-log"
    return finish(fig, title, caption_text(caption or default, provenance_sentence(provenance)))


def accuracy_table_figure(ours: dict, paper: dict, title: str = "Selective copying: paper vs ours", *,
                          caption: str | None = None, paper_label: str = "Mamba paper, Table 1") -> go.Figure:
    """Grouped horizontal bars: the paper's accuracy beside ours for each model label (missing entries are left out).

    Horizontal, so that model names read level on a phone too; the first label is at the top.
    """
    labels = list(dict.fromkeys(list(paper) + list(ours)))[::-1]
    fig = go.Figure()
    for values, name, colour in ((paper, paper_label, palette.NEUTRALS["context"]),
                                 (ours, "ours (small, this run)", palette.SERIES[0])):
        fig.add_trace(go.Bar(y=labels, x=[values.get(k) for k in labels], name=name, orientation="h",
                             marker_color=colour, text=[f"{values[k]:.1f}" if k in values else "" for k in labels],
                             textposition="inside", insidetextanchor="end"))
    fig.update_xaxes(title_text="accuracy (%)", range=[0, 105])
    fig.update_yaxes(title_text="model", automargin=True)
    fig.update_layout(barmode="group", legend=dict(traceorder="reversed"))
    default = ("Selective-copying accuracy: the paper's number (grey) beside ours (blue) for each model; ours is a "
               "much smaller run, so compare the ordering rather than the values")
    return finish(fig, title, caption_text(caption or default), height=max(360, 60 + 46 * len(labels)))


def training_curves_figure(curves: dict, title: str = "Training loss", *, caption: str | None = None) -> go.Figure:
    """Loss against step, one line per model: ``curves[label] = [(step, loss), ...]`` (``TrainResult.losses``)."""
    fig = go.Figure()
    for (name, pts), style in zip(curves.items(), palette.series_styles(list(curves))):
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", name=name, line=style))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="cross-entropy (answers)", type="log")
    default = "Training loss (cross-entropy on the answer positions) against the step, one line per model"
    return finish(fig, title, caption_text(caption or default))


def _slope(xs, ys) -> float | None:
    from ..bench.measure import fit_exponent

    pts = [(x, y) for x, y in zip(xs, ys) if y > 0]
    return fit_exponent([p[0] for p in pts], [p[1] for p in pts]) if len(pts) >= 2 else None


def _guides(fig, xs, ys_all, orders, row, col, showlegend, symbol):
    """Dotted reference lines c·x^p for each order p, through the geometric mean of the plotted data."""
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray([y for y in ys_all if y > 1e-12], dtype=float)
    if not len(ys):
        return
    x0, y0 = np.exp(np.log(xs).mean()), np.exp(np.log(ys).mean())
    for order, dash in zip(orders, ("dot", "dashdot", "longdash")):
        label = f"O({symbol}{'' if order == 1 else '²' if order == 2 else f'^{order}'})"
        fig.add_trace(go.Scatter(x=xs, y=y0 * (xs / x0) ** order, mode="lines", name=label, legendgroup=label,
                                 showlegend=showlegend, line=dict(color=palette.NEUTRALS["context"], dash=dash)),
                      row, col)


def discretization_error_figure(dts, panels: dict, *, orders=(1, 2), caption: str | None = None) -> go.Figure:
    """Error of each discretization against the step Δ, log-log, one panel per input.

    ``panels[title][method]`` is the list of errors at ``dts`` (``postlib.ssm.discretization_error``).
    Dotted guides show the slopes ``orders`` (O(Δ), O(Δ²)); the caption gives every fitted slope.
    """
    dts = [float(d) for d in dts]
    fig = make_subplots(1, len(panels), subplot_titles=list(panels), horizontal_spacing=0.12)
    fitted = []
    for col, (title, errors) in enumerate(panels.items(), start=1):
        slopes = []
        for method, errs in errors.items():
            style = METHOD_STYLES.get(method) or palette.series_styles([method])[0]
            fig.add_trace(go.Scatter(x=dts, y=list(errs), mode="lines+markers", name=method, legendgroup=method,
                                     showlegend=col == 1, line=style), 1, col)
            exact = max(errs) < 1e-12
            slope = _slope(dts, errs)
            slopes.append(f"{method} {'exact (rounding only)' if exact else f'{slope:.2f}'}")
        _guides(fig, dts, [e for errs in errors.values() for e in errs], orders, 1, col, col == 1, "Δ")
        fitted.append(f"{title}: " + ", ".join(slopes))
        fig.update_xaxes(type="log", title_text="step Δ", row=1, col=col)
        fig.update_yaxes(type="log", title_text="max relative error" if col == 1 else "relative error", row=1, col=col)
    default = ("The largest relative error of the recurrence x_k = Ā x_(k−1) + B̄ u_k against the exact solution of "
               "the ODE over a fixed time, against the step Δ, log-log: a slope p means error ∝ Δ^p")
    return finish(fig, "Discretization error against the step", caption_text(
        caption or default, "Fitted slopes. " + "; ".join(fitted)), height=440, legend="bottom")


def reconstruction_error_figure(Ns, errors: dict, *, bound_order: float = 0.5, caption: str | None = None) -> go.Figure:
    """RMS reconstruction error of a LegS memory against its size N, log-log, one line per signal.

    ``errors[signal]`` lists the errors at ``Ns`` (``postlib.ssm.hippo.reconstruction_error``). A dotted
    guide shows N^(−bound_order), the rate of the HiPPO paper's bound for Lipschitz inputs.
    """
    Ns = [int(n) for n in Ns]
    fig = go.Figure()
    slopes = []
    for (name, errs), style in zip(errors.items(), palette.series_styles(list(errors))):
        fig.add_trace(go.Scatter(x=Ns, y=list(errs), mode="lines+markers", name=name, line=style))
        slopes.append(f"{name} {-_slope(Ns, errs):.2f}")
    xs = np.asarray(Ns, dtype=float)
    top = max(max(e) for e in errors.values())
    fig.add_trace(go.Scatter(x=xs, y=top * (xs / xs[0]) ** -bound_order, mode="lines",
                             name=f"∝ N^−{bound_order:g} (bound)", line=dict(color=palette.NEUTRALS["context"], dash="dot")))
    fig.update_xaxes(type="log", title_text="coefficients N")
    fig.update_yaxes(type="log", title_text="RMS error of the rebuilt history")
    default = ("RMS error of the whole history rebuilt from the N LegS coefficients, run online, against N, log-log; "
               f"the dotted line falls as N^−{bound_order:g}, the rate of the paper's bound for a Lipschitz input")
    return finish(fig, "Rebuilding the history: error against N",
                  caption_text(caption or default, "Fitted p of error ∝ N^−p over all N: " + ", ".join(slopes)))
