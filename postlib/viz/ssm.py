"""Figures for the state-space chapter and the "State spaces" dashboard page (pure: data in, Figure out)."""
from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..ssm.discretize import METHODS, discrete_eigenvalue
from ..ssm.hippo import demo_signal, hippo_online, reconstruct, reconstruction_window
from .core import PALETTE, base_layout

METHOD_COLORS = dict(zip(METHODS, PALETTE))


def default_eigenvalues() -> np.ndarray:
    """Continuous eigenvalues to map: S4D-Lin's −½ + iπn (and conjugates) and S4D-Real's −(n+1)."""
    n = np.arange(8)
    lin = -0.5 + 1j * np.pi * n
    return np.concatenate([lin, lin.conj()[1:], -(n + 1.0)])


def eigenvalue_map(dt: float = 0.1, lam=None, methods=METHODS) -> go.Figure:
    """Where each discretization sends the continuous eigenvalues λ (left: Δλ; right: Ā's eigenvalues vs the unit circle)."""
    lam = default_eigenvalues() if lam is None else np.asarray(lam, dtype=complex)
    fig = make_subplots(1, 2, subplot_titles=("continuous: Δ·λ (stable ⇔ Re < 0)",
                                              "discrete: eigenvalues of Ā (stable ⇔ inside |z| = 1)"))
    fig.add_trace(go.Scatter(x=(dt * lam).real, y=(dt * lam).imag, mode="markers", name="Δλ",
                             marker=dict(color="black", size=7)), 1, 1)
    theta = np.linspace(0, 2 * np.pi, 200)
    fig.add_trace(go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", name="unit circle",
                             line=dict(color="grey", dash="dot")), 1, 2)
    outside = []
    for m in methods:
        z = discrete_eigenvalue(lam, dt, m)
        n_out = int((np.abs(z) > 1 + 1e-12).sum())
        outside.append(f"{m}: {n_out} unstable")
        fig.add_trace(go.Scatter(x=z.real, y=z.imag, mode="markers", name=m,
                                 marker=dict(color=METHOD_COLORS[m], size=8, symbol="circle-open", line=dict(width=2))),
                      1, 2)
    fig.update_xaxes(range=[-3.5, 0.5], title_text="Re", row=1, col=1)
    fig.update_yaxes(range=[-3.5, 3.5], title_text="Im", row=1, col=1)
    fig.update_xaxes(range=[-2.2, 2.2], title_text="Re", row=1, col=2)
    fig.update_yaxes(range=[-2.2, 2.2], scaleanchor="x2", row=1, col=2)
    return base_layout(fig, f"Δ = {dt:.3g} — " + ", ".join(outside), height=440)


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
    fig.add_trace(go.Scatter(x=times, y=sig, mode="lines", name="whole signal", line=dict(color="lightgrey")))
    fig.add_trace(go.Scatter(x=times[:step], y=sig[:step], mode="lines", name="seen so far", line=dict(color="black")))
    fig.add_trace(go.Scatter(x=s / dt, y=rec, mode="lines", name=f"rebuilt from {N} numbers",
                             line=dict(color=PALETTE[1], width=3)))
    err = np.sqrt(np.mean((rec - np.interp(s / dt, times, sig)) ** 2))
    fig.update_xaxes(range=[0, L], title_text="time step")
    fig.update_yaxes(range=[-2.2, 2.2])
    return base_layout(fig, f"HiPPO-{kind.upper()}, N = {N}: step {step}, RMS error {err:.3f}", height=380)


def memory_figure(delays, curves: dict) -> go.Figure:
    """R² of reading u_{t−τ} out of the state, against the delay τ, one line per transition matrix."""
    fig = go.Figure()
    for i, (name, r2) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(delays), y=list(r2), mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title_text="delay τ (steps)")
    fig.update_yaxes(title_text="R² of the best linear readout of u(t−τ)", range=[-0.05, 1.05])
    return base_layout(fig, "How long does the state remember?")


def kernels_figure(kernels: dict, title: str = "SSM convolution kernels K_l") -> go.Figure:
    """One line per kernel (1-D arrays), e.g. a few channels of S4 and S4D at initialisation."""
    fig = go.Figure()
    for i, (name, k) in enumerate(kernels.items()):
        k = np.asarray(k)
        fig.add_trace(go.Scatter(x=np.arange(len(k)), y=k, mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title_text="lag l")
    return base_layout(fig, title)


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
                ncol.append("#2ca02c")
                ntext.append("h final")
            elif lvl <= step:
                ncol.append("#1f77b4")
                ntext.append(f"segment [{k * 2 ** lvl}, {pos(lvl, k)}]")
            else:
                ncol.append("lightgrey")
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
                             line=dict(color="#1f77b4", width=2)))
    fig.add_trace(go.Scatter(x=down_x or [None], y=down_y or [None], mode="lines", name="fill in (down)",
                             line=dict(color="#2ca02c", width=2, dash="dash")))
    fig.add_trace(go.Scatter(x=nx, y=ny, mode="markers", name="nodes", text=ntext, hoverinfo="text",
                             marker=dict(color=ncol, size=16, line=dict(color="black", width=1))))
    phase = "inputs (a_t, b_t)" if step == 0 else (f"up-sweep level {step}" if step <= K else f"down-sweep to level {2 * K - step}")
    fig.update_xaxes(title_text="time t", range=[-0.7, L - 0.3], dtick=1)
    fig.update_yaxes(title_text="level", range=[-0.5, K + 0.5], dtick=1)
    return base_layout(fig, f"Parallel scan, L = {L}: step {step}/{2 * K} — {phase}", height=380)


def hidden_state_figure(t: int, traj: dict, u) -> go.Figure:
    """Input and Δ_t (top), then the LTI (S4D) and selective (Mamba) states up to time t (heatmaps)."""
    u = np.asarray(u)
    L, N = traj["lti"].shape
    t = int(min(max(t, 1), L))
    fig = make_subplots(3, 1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.3, 0.35, 0.35],
                        subplot_titles=("input u_t and the selective step Δ_t", "S4D (Δ fixed): state x_t",
                                        "Mamba (Δ_t from the input): state x_t"))
    steps = np.arange(L)
    fig.add_trace(go.Scatter(x=steps, y=u, mode="lines", name="u_t", line=dict(color="black")), 1, 1)
    d = traj["delta"]
    fig.add_trace(go.Scatter(x=steps, y=d / max(d.max(), 1e-12), mode="lines", name="Δ_t (scaled)",
                             line=dict(color=PALETTE[1])), 1, 1)
    fig.add_trace(go.Scatter(x=[t - 1, t - 1], y=[-1.2, 1.2], mode="lines", name="now",
                             line=dict(color="grey", dash="dot")), 1, 1)
    vmax = max(np.abs(traj["lti"]).max(), np.abs(traj["selective"]).max(), 1e-9)
    for row, key in ((2, "lti"), (3, "selective")):
        z = traj[key].T.copy()
        z[:, t:] = np.nan
        fig.add_trace(go.Heatmap(z=z, x=steps, y=np.arange(N), zmin=-vmax, zmax=vmax, colorscale="RdBu",
                                 showscale=row == 2, name=key), row, 1)
        fig.update_yaxes(title_text="state n", row=row, col=1)
    fig.update_xaxes(title_text="time step", row=3, col=1)
    return base_layout(fig, f"t = {t}", height=560)


def crossover_figure(rows, x_key: str = "states", title: str = "CPU scan: time against the per-step state size") -> go.Figure:
    """Time (ms) of each backend against dim × N (log-log), from the crossover benchmark's rows."""
    fig = go.Figure()
    names = list(dict.fromkeys(r["name"] for r in rows))
    for i, name in enumerate(names):
        pts = sorted((r[x_key], r["time_ms"]) for r in rows if r["name"] == name and r.get("status", "ok") == "ok")
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(type="log", title_text="dim × N (state size per step)")
    fig.update_yaxes(type="log", title_text="time (ms, median)")
    return base_layout(fig, title)


def accuracy_table_figure(ours: dict, paper: dict, title: str = "Selective copying: paper vs ours") -> go.Figure:
    """Grouped bars: the paper's accuracy beside ours for each model label (missing entries are left out)."""
    labels = list(dict.fromkeys(list(paper) + list(ours)))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[paper.get(k) for k in labels], name="Mamba paper, Table 1",
                         marker_color="lightgrey", text=[f"{paper[k]:.1f}" if k in paper else "" for k in labels]))
    fig.add_trace(go.Bar(x=labels, y=[ours.get(k) for k in labels], name="ours (small, this run)",
                         marker_color=PALETTE[0], text=[f"{ours[k]:.1f}" if k in ours else "" for k in labels]))
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 105])
    return base_layout(fig, title, barmode="group")


def training_curves_figure(curves: dict, title: str = "Training loss") -> go.Figure:
    """Loss against step, one line per model: ``curves[label] = [(step, loss), ...]`` (``TrainResult.losses``)."""
    fig = go.Figure()
    for i, (name, pts) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="cross-entropy on the answer positions", type="log")
    return base_layout(fig, title)
