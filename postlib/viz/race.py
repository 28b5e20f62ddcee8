"""Figures of the scaling race (``python -m postlib.bench race``): curves, how far each mixer got, crossovers.

Input is a race result as ``postlib.bench.load_results("cpu_race.json")`` returns it (or
the same dict built live from ``postlib.bench.experiments.race``): rows with a ``status``
and a ``reason`` for every point the race refused, plus ``fits``, ``crossovers`` and
``crossover_kinds``. Every curve ends where its mixer stopped, and the hover says why.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette
from .theme import caption_text, finish, provenance_sentence

MODE_LABELS = {"forward": "forward", "forward_backward": "forward + backward"}
# Why a series stopped, in a word (the status of its first refused row).
STOP_WORDS = {"over budget": "memory budget", "over time budget": "time budget", "no estimate": "no estimate",
              "refused": "refused by the mixer", "out of memory": "out of memory"}


def _check_result(result) -> list[dict]:
    if not isinstance(result, dict) or not isinstance(result.get("rows"), list):
        raise TypeError("result must be a dict with 'rows' (postlib.bench.load_results('cpu_race.json'))")
    return result["rows"]


def _check_mode(mode: str) -> str:
    if mode not in MODE_LABELS:
        raise ValueError(f"mode must be one of {sorted(MODE_LABELS)}, got {mode!r}")
    return mode


def race_stops(rows: list[dict], mode: str) -> dict[str, dict]:
    """``{name: {"reached": longest length measured or None, "status", "reason", "stopped_at"}}`` for one mode.

    ``status`` is "ok" for a mixer that ran every length; otherwise the status of the first
    refused length (``stopped_at``), whose ``reason`` says why.
    """
    out: dict[str, dict] = {}
    for r in sorted((r for r in rows if r.get("mode") == mode), key=lambda r: (r["name"], r["length"])):
        entry = out.setdefault(r["name"], {"reached": None, "status": "ok", "reason": "", "stopped_at": None})
        if r["status"] == "ok" and entry["stopped_at"] is None:
            entry["reached"] = r["length"]
        elif r["status"] != "ok" and entry["stopped_at"] is None:
            entry.update(status=r["status"], reason=r.get("reason", ""), stopped_at=r["length"])
    return out


def memory_walls(rows: list[dict], mode: str) -> dict[str, int]:
    """``{name: the first length whose memory estimate reached the budget}`` in one mode (mixers that hit it).

    Decided from the estimates alone (status "over budget"), so it holds whatever the machine's load:
    the race checks memory before time, and records it even after the time budget stopped a mixer.
    """
    out: dict[str, int] = {}
    for r in rows:
        if r.get("mode") == mode and r.get("status") == "over budget":
            out[r["name"]] = min(out.get(r["name"], r["length"]), r["length"])
    return out


def _stop_sentence(stops: dict[str, dict]) -> str:
    groups: dict[str, list[str]] = {}
    for name, s in stops.items():
        if s["status"] != "ok":
            groups.setdefault(STOP_WORDS.get(s["status"], s["status"]), []).append(name)
    if not groups:
        return "Every mixer ran every length"
    return "Stopped by " + "; by ".join(f"the {why}: {', '.join(names)}" for why, names in groups.items())


def race_figure(result: dict, mode: str = "forward", *, title: str | None = None,
                caption: str | None = None) -> go.Figure:
    """Time and measured peak memory against length for every mixer in one mode, log-log.

    Each curve ends at the last length its mixer ran; a cross marks where it stopped (hover:
    the reason). The memory panel draws the race's memory budget; the legend gives each
    mixer's fitted time exponent (the result's ``fits``).
    """
    rows = [r for r in _check_result(result) if r.get("mode") == _check_mode(mode)]
    ok = [r for r in rows if r["status"] == "ok" and r.get("time_ms")]
    if not ok:
        raise ValueError(f"the result holds no measured point in mode {mode!r}")
    names = sorted({r["name"] for r in ok})
    styles = dict(zip(names, palette.series_styles(names)))
    fits = result.get("fits") or {}
    stops = race_stops(rows, mode)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("time", "peak memory"), horizontal_spacing=0.14)
    for col, metric, scale in ((1, "time_ms", 1.0), (2, "peak_mem_bytes", 1 / 2**20)):
        for name in names:
            pts = sorted((r["length"], r[metric] * scale) for r in ok if r["name"] == name and r.get(metric))
            p = (fits.get(f"{name} ({mode})") or {}).get("time_ms")
            fig.add_trace(go.Scatter(
                x=[n for n, _ in pts], y=[y for _, y in pts], mode="lines+markers", line=styles[name],
                name=name + (f"  ~L^{p:.2f}" if p is not None else ""), legendgroup=name, showlegend=col == 1,
                hovertemplate=f"{name}<br>L=%{{x}}<br>%{{y:.4g}}<extra></extra>"), row=1, col=col)
        ends = [(name, s) for name, s in stops.items() if s["status"] != "ok" and s["reached"]]
        last = {(r["name"], r["length"]): r[metric] * scale for r in ok if r.get(metric)}
        fig.add_trace(go.Scatter(
            x=[s["reached"] for _, s in ends], y=[last[(name, s["reached"])] for name, s in ends], mode="markers",
            marker=dict(symbol="x", size=9, color=palette.NEUTRALS["ink"]), name="stopped here",
            legendgroup="stopped", showlegend=col == 1,
            text=[f"{name} stopped at L={s['stopped_at']}: {s['reason']}" for name, s in ends],
            hovertemplate="%{text}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(type="log", title="sequence length L", row=1, col=col)
    budget = (result.get("budget") or {}).get("max_bytes")
    if budget:
        lengths = sorted({r["length"] for r in rows})
        fig.add_trace(go.Scatter(x=[lengths[0], lengths[-1]], y=[budget / 2**20] * 2, mode="lines",
                                 line=dict(color=palette.NEUTRALS["context"], dash="dash"), name="memory budget",
                                 hovertemplate=f"budget {budget / 2**20:.0f} MiB<extra></extra>"), row=1, col=2)
    fig.update_yaxes(type="log", title="time (ms)", row=1, col=1)
    fig.update_yaxes(type="log", title="peak memory (MiB)", row=1, col=2)
    default = (f"{MODE_LABELS[mode].capitalize()} time and measured peak memory of every mixer against length, "
               f"log-log, d_model {ok[0].get('d_model')}, batch {ok[0].get('batch')}; a cross marks the last length "
               f"a mixer ran. {_stop_sentence(stops)}"
               + (f". Memory budget {budget / 2**20:.0f} MiB (dashed)" if budget else ""))
    return finish(fig, title or "The scaling race", caption_text(caption or default,
                                                                 provenance_sentence(result.get("provenance"))),
                  height=520, legend="bottom")


def _kind_marker(kind: str) -> tuple[str, str]:
    """(marker symbol, words) for a crossover kind."""
    return {"measured": ("circle", "measured"), "extrapolated": ("circle-open", "softmax extrapolated"),
            "faster throughout": ("triangle-left", "faster at every length"),
            "never": ("triangle-right", "never faster"),
            "slower at long lengths": ("triangle-right", "faster only at short lengths")}.get(kind, ("x", kind))


def race_summary_figure(result: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Two panels over the mixers: the longest length each ran, and its crossover length against softmax.

    Crossovers: a filled dot where both were measured around it, an open dot where softmax's
    last two points were extended as a power law, a left triangle at the shortest length for a
    mixer faster at every length, a right triangle at the longest for one never faster.
    """
    rows = _check_result(result)
    modes = [m for m in MODE_LABELS if any(r.get("mode") == m for r in rows)]
    if not modes:
        raise ValueError("the result holds no rows in mode 'forward' or 'forward_backward'")
    lengths = sorted({r["length"] for r in rows})
    names = sorted({r["name"] for r in rows})
    crossings, kinds = result.get("crossovers") or {}, result.get("crossover_kinds") or {}
    colors = dict(zip(modes, palette.series_colors([MODE_LABELS[m] for m in modes])))
    symbols = {"forward": "circle", "forward_backward": "diamond"}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("longest length run", "crossover vs softmax"),
                        horizontal_spacing=0.3)
    for mode in modes:
        stops = race_stops(rows, mode)
        ran = [n for n in names if stops.get(n, {}).get("reached")]
        fig.add_trace(go.Scatter(
            x=[stops[n]["reached"] for n in ran], y=ran, mode="markers", name=MODE_LABELS[mode],
            legendgroup=mode, marker=dict(symbol=symbols[mode], size=10, color=colors[mode]),
            text=[f"{n}: ran up to L={stops[n]['reached']}" + (f"; stopped at {stops[n]['stopped_at']}: "
                  f"{stops[n]['reason']}" if stops[n]["status"] != "ok" else "; every length") for n in ran],
            hovertemplate="%{text}<extra></extra>"), row=1, col=1)
        walls = memory_walls(rows, mode)
        walled = [n for n in names if walls.get(n)]
        if walled:
            fig.add_trace(go.Scatter(
                x=[walls[n] for n in walled], y=walled, mode="markers", name=f"memory wall ({MODE_LABELS[mode]})",
                legendgroup=mode, marker=dict(symbol="line-ns-open", size=16, color=colors[mode], line=dict(width=3, color=colors[mode])),
                text=[f"{n} ({MODE_LABELS[mode]}): estimate at or above the memory budget from L={walls[n]}"
                      for n in walled], hovertemplate="%{text}<extra></extra>"), row=1, col=1)
        xs, ys, marks, texts = [], [], [], []
        for n in names:
            key = f"{n} ({mode})"
            if key not in kinds:
                continue
            kind = kinds[key]
            symbol, words = _kind_marker(kind)
            x = crossings.get(key) or (lengths[0] if kind == "faster throughout" else lengths[-1])
            xs.append(x), ys.append(n), marks.append(symbol)
            texts.append(f"{n} ({MODE_LABELS[mode]}): " + (f"L≈{x:.0f}, {words}" if crossings.get(key) else words))
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=MODE_LABELS[mode], legendgroup=mode,
                                     showlegend=False, text=texts, hovertemplate="%{text}<extra></extra>",
                                     marker=dict(symbol=marks, size=11, color=colors[mode],
                                                 line=dict(width=2, color=colors[mode]))), row=1, col=2)
    for col, label in ((1, "longest length L run"), (2, "crossover length L")):
        fig.update_xaxes(type="log", title=label, range=[math.log10(lengths[0]) - 0.2, math.log10(lengths[-1]) + 0.2],
                         row=1, col=col)
        fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], title="mixer",
                         showticklabels=True, row=1, col=col)
    known = {k: v for k, v in crossings.items() if v}
    default = (f"Left: the longest length each mixer ran in the race (of {lengths[0]} to {lengths[-1]}; hover for "
               "why it stopped) and its memory wall, the first length whose memory estimate reaches the budget "
               "(a bar). Right: the length from which it is faster than softmax, in the same mode: filled "
               "where measured, open where softmax's last two points are extended as a power law (softmax stopped "
               "at the memory budget), a left triangle for faster at every length, a right triangle for never"
               + (f". {len(known)} of {len(kinds)} crossovers found" if kinds else ""))
    return finish(fig, title or "How far each mixer got",
                  caption_text(caption or default, provenance_sentence(result.get("provenance"))),
                  height=max(420, 60 + 26 * len(names)), legend="bottom")



def race_devices_figure(results: dict, mode: str = "forward", *, names=None, title: str | None = None,
                        caption: str | None = None) -> go.Figure:
    """The same race on every recorded device: time against length, one curve per mixer and device.

    ``results`` maps a device label ("CPU", "GPU") to a race result, or to None when that device
    has no recorded race (the caption says so, naming the file to record). ``names`` picks mixers
    (default: every mixer in the results). A mixer keeps its colour; the device changes the dash.
    """
    if not isinstance(results, dict) or not any(isinstance(r, dict) for r in results.values()):
        raise TypeError("results must map device labels to race results (at least one recorded)")
    _check_mode(mode)
    present = {label: r for label, r in results.items() if isinstance(r, dict)}
    missing = [label for label, r in results.items() if not isinstance(r, dict)]
    all_rows = [row for r in present.values() for row in _check_result(r)]
    wanted = sorted({row["name"] for row in all_rows}) if names is None else list(names)
    labels, series_pts = [], {}
    for name in wanted:
        for label, result in present.items():
            pts = sorted((row["length"], row["time_ms"]) for row in result["rows"] if row["name"] == name and
                         row.get("mode") == mode and row["status"] == "ok" and row.get("time_ms"))
            if pts:
                labels.append(f"{name} ({label})")
                series_pts[labels[-1]] = pts
    if not labels:
        raise ValueError(f"no measured point for {wanted} in mode {mode!r}")
    fig = go.Figure()
    for label, style in zip(labels, palette.series_styles(labels)):
        pts = series_pts[label]
        fig.add_trace(go.Scatter(x=[n for n, _ in pts], y=[t for _, t in pts], mode="lines+markers", name=label,
                                 line=style, hovertemplate=f"{label}<br>L=%{{x}}<br>%{{y:.4g}} ms<extra></extra>"))
    fig.update_xaxes(type="log", title="sequence length L")
    fig.update_yaxes(type="log", title="time (ms)")
    where = "; ".join(f"{label}: {provenance_sentence(r.get('provenance')).rstrip('.')}" for label, r in present.items())
    absent = (f" No {' or '.join(missing)} race is recorded yet (its results file is missing): record one with "
              "`make gpu-race` on a CUDA machine" if missing else "")
    default = (f"{MODE_LABELS[mode].capitalize()} time against length for {', '.join(wanted)} on every device with "
               f"a recorded race (colour: mixer, dash: device).{absent}")
    return finish(fig, title or "The race on each device", caption_text(caption or default, where), height=460,
                  legend="bottom")
