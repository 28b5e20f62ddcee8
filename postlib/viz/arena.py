"""The task arena's figures: recall against state size, length extrapolation, the accuracy table.

Input is the rows of ``postlib.bench.experiments.arena`` (live, or read back from
``cpu_arena.json`` with ``postlib.bench.load_results``): one row per entrant, task, width and
test length, with ``accuracy``, ``chance`` and the measured decoding ``state_bytes``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import plotly.graph_objects as go

from . import palette
from .theme import caption_text, coloraxis, finish, provenance_sentence


def _ok(rows: Iterable[dict], task: str) -> list[dict]:
    return [r for r in rows if r.get("status") == "ok" and r.get("task") == task]


def _styles(names: Sequence[str]) -> dict[str, dict]:
    return dict(zip(names, palette.series_styles(list(names))))


def _mean_by(rows: list[dict], key) -> dict:
    """Average the accuracy of rows sharing ``key(row)`` (several seeds)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return {k: (sum(r["accuracy"] for r in v) / len(v), v[0]) for k, v in groups.items()}


def _accuracy_lines(rows, task: str, along: str, x_of, hover: str) -> tuple[list[dict], go.Figure]:
    """The ``task``'s ok rows, and a figure with one line per entrant: accuracy (%, mean over seeds) at each
    value of ``along`` (a row key), placed at ``x_of(row)``."""
    rows = _ok(rows, task)
    if not rows:
        raise ValueError(f"rows contain no {task!r} row with status 'ok' to plot")
    points = _mean_by(rows, lambda r: (r["name"], r[along]))
    names = list(dict.fromkeys(r["name"] for r in rows))
    styles = _styles(names)
    fig = go.Figure()
    for name in names:
        pts = sorted((x_of(row), acc, value) for (n, value), (acc, row) in points.items() if n == name)
        fig.add_trace(go.Scatter(
            x=[p[0] for p in pts], y=[100 * p[1] for p in pts], mode="lines+markers", name=name,
            line=styles[name], customdata=[p[2] for p in pts],
            hovertemplate=f"{name}<br>{hover}<br>accuracy %{{y:.1f}}%<extra></extra>"))
    return rows, fig


def state_recall_figure(rows: Iterable[dict], *, title: str | None = None, provenance: dict | None = None,
                        caption: str | None = None) -> go.Figure:
    """MQAR accuracy against the measured decoding-state bytes, one line per entrant through its widths
    (Zoology's Fig. 2 at toy scale). A KV cache sits far right: it keeps every token."""
    rows, fig = _accuracy_lines(rows, "mqar", "d_model", lambda row: row["state_bytes"],
                                "state %{x:,} bytes<br>d_model %{customdata}")
    chance = 100 * rows[0]["chance"]
    fig.add_hline(y=chance, line=dict(color=palette.NEUTRALS["context"], dash="dot"))
    fig.update_xaxes(type="log", title="decoding state (bytes, measured)")
    fig.update_yaxes(title="MQAR accuracy (%)", range=[0, 103])
    widths = sorted({r["d_model"] for r in rows})
    default = (f"Multi-query associative recall accuracy against the bytes of the state each model holds to "
               f"predict the next token, measured from its init_state/step state; one point per width "
               f"d_model in {widths}, the dotted line is chance ({chance:.1f}%)")
    return finish(fig, title or "Recall against state size",
                  caption_text(caption or default, provenance_sentence(provenance)), legend="bottom")


def extrapolation_figure(rows: Iterable[dict], *, title: str | None = None, provenance: dict | None = None,
                         caption: str | None = None) -> go.Figure:
    """Induction-heads accuracy against test length, one line per entrant; the dashed line marks the
    training length (Mamba's Table 2 at toy scale)."""
    rows, fig = _accuracy_lines(rows, "induction", "length", lambda row: row["length"], "L=%{x}")
    train_length = rows[0]["train_length"]
    fig.add_vline(x=train_length, line=dict(color=palette.NEUTRALS["context"], dash="dash"))
    chance = 100 * rows[0]["chance"]
    fig.add_hline(y=chance, line=dict(color=palette.NEUTRALS["context"], dash="dot"))
    fig.update_xaxes(type="log", title="test sequence length L")
    fig.update_yaxes(title="induction accuracy (%)", range=[0, 103])
    default = (f"Induction heads: every model trained at length {train_length} (dashed line) and tested at "
               f"{sorted({r['length'] for r in rows})}; the dotted line is chance ({chance:.1f}%)")
    return finish(fig, title or "Induction heads beyond the training length",
                  caption_text(caption or default, provenance_sentence(provenance)), legend="bottom")


def _short(column: str) -> str:
    """A task column on short lines: "induction (L=64)" -> "ind.<br>heads<br>L=64", no wider than
    "copying", so five columns fit a phone's 342 px figure."""
    name, _, detail = column.partition(" (")
    name = {"selective_copying": "copying", "mqar": "MQAR", "listops": "ListOps",
            "induction": "ind.<br>heads"}.get(name, name)
    return f"{name}<br>{detail.rstrip(')')}" if detail else name


def accuracy_table_figure(table: dict[str, dict[str, float]], *, title: str | None = None,
                          provenance: dict | None = None, caption: str | None = None) -> go.Figure:
    """Heatmap of ``{entrant: {column: accuracy}}`` (``arena.accuracy_table``), the value in each cell."""
    if not table:
        raise ValueError("table must map at least one entrant to its accuracies")
    names = list(table)
    columns = list(dict.fromkeys(c for row in table.values() for c in row))
    z = [[100 * table[n][c] if c in table[n] else None for c in columns] for n in names]
    fig = go.Figure(go.Heatmap(
        z=z, x=[_short(c) for c in columns], y=names, coloraxis="coloraxis", xgap=2, ygap=2,
        text=[[f"{v:.0f}" if v is not None else "" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate="%{y}<br>%{x}<br>accuracy %{z:.1f}%<extra></extra>"))
    coloraxis(fig, colorscale=palette.SEQUENTIAL, title="accuracy (%)", cmin=0, cmax=100)
    fig.update_xaxes(title="task", tickangle=0, tickfont=dict(size=10))
    fig.update_yaxes(title="model", autorange="reversed")
    default = "Test accuracy (%) of every entrant on every task, same backbone, steps and seed"
    return finish(fig, title or "The arena's accuracy table",
                  caption_text(caption or default, provenance_sentence(provenance)),
                  height=max(360, 60 + 34 * len(names)))


def state_growth_figure(rows: Iterable[dict], *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Decoding-state bytes against the context length read so far, one line per entrant (log-log): a KV cache
    grows with every token, a recurrent state stays flat. ``rows``: ``{"name", "length", "state_bytes"}``."""
    rows = [r for r in rows if r.get("state_bytes")]
    if not rows:
        raise ValueError("rows contain no 'state_bytes' to plot")
    names = list(dict.fromkeys(r["name"] for r in rows))
    styles = _styles(names)
    fig = go.Figure()
    for name in names:
        pts = sorted((r["length"], r["state_bytes"]) for r in rows if r["name"] == name)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=styles[name],
                                 hovertemplate=f"{name}<br>L=%{{x}}<br>%{{y:,}} bytes<extra></extra>"))
    fig.update_xaxes(type="log", title="tokens read (context length L)")
    fig.update_yaxes(type="log", title="decoding state (bytes)")
    lengths = sorted({r["length"] for r in rows})
    default = (f"Bytes of the state each model holds after reading L tokens (L in {lengths}), measured by stepping "
               "its init_state/step through the sequence")
    return finish(fig, title or "What each model keeps while decoding", caption_text(caption or default),
                  legend="bottom")
