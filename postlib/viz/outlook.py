"""Figures of the outlook chapter (chapters/07_lab/outlook.md): roofline, long context, probes.

Pure builders: rows from ``postlib.outlook`` (or a recorded file) in, a plotly Figure out.
Colour names the *form* (materialised, loop, chunked, fused kernel: ``palette.color``), the
marker symbol names the *operation* (attention, linear attention, scan), so the same colour
means the same idea in every panel.
"""
from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette
from .theme import caption_text, finish, provenance_sentence

# form -> the palette name of its colour
FORM_COLOR = {
    "softmax (materialised)": "softmax", "flash tiling (PyTorch loop)": "flash", "flash (fused kernel)": "triton",
    "linear attention (prefix sums)": "linear", "linear attention (chunked)": "chunked",
    "linear attention (fused kernel)": "triton", "scan (sequential loop)": "loop", "scan (chunked)": "chunked",
    "scan (fused kernel)": "triton", "matmul": "reference",
}
# Legend labels: a label that names a method wears that method's colour (palette rule), so the forms
# coloured by their form rather than their method are named form-first.
LABEL = {"linear attention (chunked)": "chunked linear attention", "flash (fused kernel)": "fused flash kernel (Triton)",
         "linear attention (fused kernel)": "fused linear-attention kernel (Triton)",
         "scan (fused kernel)": "fused scan kernel (Triton)"}
# Short axis labels (a phone gives the tick labels little room); the full name is in the hover text.
SHORT = {"softmax (materialised)": "softmax", "flash tiling (PyTorch loop)": "flash loop",
         "flash (fused kernel)": "flash fused", "linear attention (prefix sums)": "lin. prefix",
         "linear attention (chunked)": "lin. chunked", "linear attention (fused kernel)": "lin. fused",
         "scan (sequential loop)": "scan loop", "scan (chunked)": "scan chunked", "scan (fused kernel)": "scan fused",
         "matmul": "matmul"}
KIND_SYMBOL = {"attention": "circle", "linear": "square", "scan": "diamond", "matmul": "x"}


def _form_color(form: str) -> str:
    return palette.color(FORM_COLOR.get(form, "reference"))


def _roof_trace(x_lo, x_hi, peak, bandwidth, name, dash, showlegend=True):
    import numpy as np

    xs = np.geomspace(x_lo, x_hi, 60)
    ys = [min(peak if peak else float("inf"), x * bandwidth) / 1e9 for x in xs]
    return go.Scatter(x=xs, y=ys, mode="lines", name=name, showlegend=showlegend,
                      line=dict(color=palette.NEUTRALS["ink"], dash=dash, width=1.5),
                      hovertemplate=f"{name}<br>%{{x:.3g}} FLOP/B → %{{y:.3g}} GFLOP/s<extra></extra>")


def roofline_figure(rows: Sequence[dict], roofs: dict, *, gpu_rows: Sequence[dict] = (), gpu_roofs: dict | None = None,
                    provenance: dict | None = None, gpu_provenance: dict | None = None, machine: str = "CPU",
                    title: str | None = None, caption: str | None = None) -> go.Figure:
    """Log-log roofline: intensity (FLOP/byte, counted) against throughput (GFLOP/s, measured).

    ``rows``: ``postlib.outlook.roofline`` point rows (``form``, ``kind``, ``length``, ``intensity``,
    ``flops_per_s``); ``roofs``: ``{"peak_flops", "bandwidth"}`` measured on the same machine. GPU
    rows and roofs (from ``gpu_points``) are added as open markers and a dashed roof when given.
    ``machine`` names where ``rows`` and ``roofs`` were measured ("CPU", or "GPU" for a live GPU run).
    """
    rows, gpu_rows = list(rows), list(gpu_rows)
    if not rows:
        raise ValueError("rows must hold at least one roofline point")
    for key in ("peak_flops", "bandwidth"):
        if not roofs or not roofs.get(key):
            raise ValueError(f"roofs must give {key!r} (measured), got {roofs!r}")
    all_i = [r["intensity"] for r in rows + gpu_rows]
    x_lo, x_hi = min(all_i) / 3, max(max(all_i) * 3, 3 * roofs["peak_flops"] / roofs["bandwidth"])
    fig = go.Figure()
    fig.add_trace(_roof_trace(x_lo, x_hi, roofs["peak_flops"], roofs["bandwidth"], f"{machine} roof (measured)", "solid"))
    for source, group, open_marker in ((machine, rows, False), ("GPU", gpu_rows, True)):
        forms = list(dict.fromkeys(r["form"] for r in group))
        for form in forms:
            pts = [r for r in group if r["form"] == form]
            symbol = KIND_SYMBOL.get(pts[0]["kind"], "circle") + ("-open" if open_marker else "")
            fig.add_trace(go.Scatter(
                x=[r["intensity"] for r in pts], y=[r["flops_per_s"] / 1e9 for r in pts], mode="markers",
                name=f"{LABEL.get(form, form)}, {source}" if gpu_rows else LABEL.get(form, form),
                marker=dict(color=_form_color(form), symbol=symbol, size=11, line=dict(width=1.5)),
                text=[f"L={r['length']}" for r in pts],
                hovertemplate=f"{form}<br>%{{text}}<br>%{{x:.3g}} FLOP/B<br>%{{y:.3g}} GFLOP/s<extra></extra>"))
    if gpu_roofs and gpu_roofs.get("bandwidth"):
        fig.add_trace(_roof_trace(x_lo, x_hi, gpu_roofs.get("peak_flops"), gpu_roofs["bandwidth"],
                                  "GPU memory roof (recorded)", "dash"))
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOP per byte moved)")
    ys = [r["flops_per_s"] / 1e9 for r in rows + gpu_rows]
    top = max([*ys, roofs["peak_flops"] / 1e9] + ([x_hi * gpu_roofs["bandwidth"] / 1e9] if gpu_roofs
                                                     and gpu_roofs.get("bandwidth") and gpu_rows else []))
    fig.update_yaxes(type="log", title_text="throughput (GFLOP/s)",
                     range=[math.log10(min(ys) / 2), math.log10(top * 2)])     # the flat roof stays in view
    ridge = roofs["peak_flops"] / roofs["bandwidth"]
    cap = caption or caption_text(
        "FLOPs and bytes counted from formulas (inputs read once, outputs written once, each materialised "
        "intermediate written and read once; a fused kernel keeps its tiles on chip)",
        f"{machine} roof measured: peak {roofs['peak_flops'] / 1e9:.3g} GFLOP/s (fp32 matmul), bandwidth "
        f"{roofs['bandwidth'] / 1e9:.3g} GB/s (large copy), ridge at {ridge:.3g} FLOP/B",
        "Colour: the form; marker: attention (circle), linear attention (square), scan (diamond)",
        provenance_sentence(provenance),
        ("GPU points (open markers) from gpu_check.json. " + provenance_sentence(gpu_provenance)) if gpu_rows
        else "No GPU points: no gpu_check.json with timings is recorded")
    return finish(fig, title or "The roofline of our kernels", cap, height=480)


def traffic_figure(tables: dict[str, dict[str, int]], itemsize: int, *, shape_text: str = "",
                   title: str | None = None, caption: str | None = None) -> go.Figure:
    """Where the bytes go: one bar per form, the counted traffic in MiB (log axis), its largest part named.

    ``tables``: ``{form: postlib.outlook.roofline.traffic(form, shape)}`` (elements × touches). Bars,
    not stacks: on a log axis stacked segments would not add up visually.
    """
    if not tables:
        raise ValueError("tables must hold at least one form")
    forms = list(tables)
    totals = [sum(tables[f].values()) * itemsize / 2 ** 20 for f in forms]
    largest = [max(tables[f], key=tables[f].get) for f in forms]
    shares = [tables[f][g] / sum(tables[f].values()) for f, g in zip(forms, largest)]
    fig = go.Figure(go.Bar(
        y=[SHORT.get(f, f) for f in forms], x=totals, orientation="h", marker_color=[_form_color(f) for f in forms],
        showlegend=False, text=[f"{100 * sh:.0f}% {g}" for g, sh in zip(largest, shares)], textposition="auto",
        customdata=forms, hovertemplate="%{customdata}<br>%{x:.3g} MiB<br>%{text}<extra></extra>"))
    fig.update_xaxes(type="log", title_text="traffic per call (MiB)")
    fig.update_yaxes(title_text="form", autorange="reversed")
    cap = caption or caption_text(
        f"Counted traffic per call{(' at ' + shape_text) if shape_text else ''}, {itemsize}-byte elements; "
        "the bar's text names the largest part of it",
        "Totals: " + "; ".join(f"{f} {v:.3g} MiB" for f, v in zip(forms, totals)))
    return finish(fig, title or "Where the bytes go", cap, height=140 + 50 * len(forms))


def streaming_memory_figure(rows: Sequence[dict], *, segment: int, heads: int, dim: int, title: str | None = None,
                            caption: str | None = None) -> go.Figure:
    """Memory against context length: linear attention streamed in segments (carried state) and in one
    call (measured peaks), beside what softmax must keep (its KV cache) and the state itself (counted).

    ``rows``: ``{"length", "streaming_bytes", "one_shot_bytes" (None: not run), "kv_cache_bytes",
    "state_bytes"}`` per length.
    """
    rows = sorted(rows, key=lambda r: r["length"])
    if not rows:
        raise ValueError("rows must hold at least one length")
    series = {"linear attention (streamed, measured peak)": "streaming_bytes",
              "linear attention (one call, measured peak)": "one_shot_bytes",
              "softmax (KV cache, counted)": "kv_cache_bytes",
              "carried state S, z (counted)": "state_bytes"}
    styles = dict(zip(series, palette.series_styles(list(series))))
    fig = go.Figure()
    for label, key in series.items():
        pts = [(r["length"], r[key]) for r in rows if r.get(key)]
        fig.add_trace(go.Scatter(x=[n for n, _ in pts], y=[b / 2 ** 20 for _, b in pts], mode="lines+markers",
                                 name=label, line=styles[label],
                                 hovertemplate=f"{label}<br>L=%{{x}}<br>%{{y:.3g}} MiB<extra></extra>"))
    fig.update_xaxes(type="log", title_text="context length (tokens)")
    fig.update_yaxes(type="log", title_text="memory (MiB)")
    last = rows[-1]
    cap = caption or caption_text(
        f"Causal linear attention, {heads} heads of dim {dim}, fp32, streamed in segments of {segment} tokens",
        f"At {last['length']:,} tokens the stream peaked at {last['streaming_bytes'] / 2 ** 20:.3g} MiB "
        f"(measured) while a KV cache would hold {last['kv_cache_bytes'] / 2 ** 20:.3g} MiB")
    return finish(fig, title or "A carried state streams any length", cap)


def retrieval_figure(sweep: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Top-k retrieval attention against full attention over the whole memory: recall accuracy and
    the output's distance to full attention, against k (``postlib.outlook.long_context.retrieval_sweep``)."""
    rows = sorted(sweep["rows"], key=lambda r: r["k"])
    if not rows:
        raise ValueError("sweep['rows'] must hold at least one k")
    ks = [r["k"] for r in rows]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16, subplot_titles=("recall", "distance to full"))
    top = palette.color("chunked")
    fig.add_trace(go.Scatter(x=ks, y=[100 * r["accuracy"] for r in rows], mode="lines+markers", name="top-k attention",
                             line=dict(color=top), legendgroup="topk",
                             hovertemplate="k=%{x}<br>%{y:.1f}%<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[ks[0], ks[-1]], y=[100 * sweep["full"]["accuracy"]] * 2, mode="lines",
                             name="full attention", line=dict(color=palette.color("softmax"), dash="dash"),
                             hovertemplate="full attention: %{y:.1f}%<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=ks, y=[max(r["rel_error"], 1e-16) for r in rows], mode="lines+markers",
                             name="top-k attention", showlegend=False, line=dict(color=top), legendgroup="topk",
                             hovertemplate="k=%{x}<br>rel. RMS %{y:.3g}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(type="log", title_text="k (values read per query)")
    fig.update_yaxes(title_text="right value recalled (%)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="relative RMS to full attention", row=1, col=2)
    cap = caption or caption_text(
        f"A memory of {sweep['n_memory']:,} random unit (key, value) pairs in dimension {sweep['dim']}; "
        f"{sweep['n_queries']} queries are stored keys plus noise {sweep['noise']}; softmax scale {sweep['scale']}",
        f"Full attention reads all {sweep['n_memory']:,} values per query and recalls "
        f"{100 * sweep['full']['accuracy']:.1f}%; top-{ks[0]} recalls {100 * rows[0]['accuracy']:.1f}%",
        "The search is exact, block by block with a running top-k")
    return finish(fig, title or "Retrieval: attend to the k best keys", cap)


def selectivity_figure(trained: Sequence[dict], untrained: Sequence[dict], *, ratio: float = 1.5,
                       title: str | None = None, caption: str | None = None) -> go.Figure:
    """Each channel's mean Δ at colour tokens against at noise tokens, one panel per layer, trained
    against untrained (``postlib.outlook.probe.channel_deltas``). On the diagonal a channel treats both
    alike; above it a colour overwrites more of the state than noise does, below it less."""
    import numpy as np

    trained, untrained = list(trained), list(untrained)
    if not trained or len(trained) != len(untrained):
        raise ValueError("trained and untrained must hold one dict per layer, as many each")
    n = len(trained)
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.14, subplot_titles=[f"layer {r['layer']}" for r in trained])
    for col, (tr, un) in enumerate(zip(trained, untrained), start=1):
        values = [v for r in (tr, un) for key in ("noise", "colour") for v in r[key]]
        lo, hi = min(values) / 1.3, max(values) * 1.3
        for factor, dash, name in ((1.0, "solid", "same Δ"), (ratio, "dot", f"{ratio}× apart"),
                                   (1 / ratio, "dot", None)):
            fig.add_trace(go.Scatter(x=[lo, hi], y=[lo * factor, hi * factor], mode="lines", name=name or "",
                                     showlegend=col == 1 and name is not None, legendgroup=f"guide{dash}",
                                     line=dict(color=palette.NEUTRALS["context"], dash=dash), hoverinfo="skip"),
                          row=1, col=col)
        for label, r, colour in (("untrained", un, palette.NEUTRALS["muted"]), ("trained", tr, palette.color("mamba"))):
            fig.add_trace(go.Scatter(x=r["noise"], y=r["colour"], mode="markers", name=f"{label} channels",
                                     legendgroup=label, showlegend=col == 1,
                                     marker=dict(color=colour, size=7, opacity=0.8),
                                     text=[f"channel {i}" for i in range(len(r["noise"]))],
                                     hovertemplate=f"{label}, %{{text}}<br>Δ noise %{{x:.3g}}<br>Δ colour %{{y:.3g}}"
                                                   "<extra></extra>"), row=1, col=col)
        fig.update_xaxes(type="log", range=[np.log10(lo), np.log10(hi)], title_text="mean Δ at noise", row=1, col=col)
        fig.update_yaxes(type="log", range=[np.log10(lo), np.log10(hi)], title_text="mean Δ at colours",
                         row=1, col=col)
    cap = caption or caption_text(
        "Mamba on selective copying: every channel's step size Δ averaged over noise tokens and over colour "
        "tokens of the test inputs; the untrained model has the same architecture, freshly initialised",
        "Channels more than " + f"{ratio}× apart: " + "; ".join(
            f"layer {t['layer']} trained {t['selective']}, untrained {u['selective']} of {len(t['noise'])}"
            for t, u in zip(trained, untrained)))
    return finish(fig, title or "What decays: channels learn to select", cap, legend="bottom")


def probe_figure(result: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Linear-probe accuracy of each memorised colour from each layer's state at the separator, trained
    against untrained, with chance (``postlib.outlook.probe.memory_probe``)."""
    slots = [f"colour {i}" for i in result["slots"]]
    labels, values = [], []
    for name in ("trained", "untrained"):
        for layer, accs in enumerate(result[name], start=1):
            labels.append(f"{name}, layer {layer}")
            values.append(accs)
    styles = palette.series_styles(labels)
    fig = go.Figure()
    for label, accs, st in zip(labels, values, styles):
        fig.add_trace(go.Bar(x=slots, y=[100 * a for a in accs], name=label, marker_color=st["color"],
                             hovertemplate=f"{label}<br>%{{x}}: %{{y:.1f}}%<extra></extra>"))
    fig.add_trace(go.Scatter(x=slots, y=[100 * result["chance"]] * len(slots), mode="lines", name="chance",
                             line=dict(color=palette.NEUTRALS["context"], dash="dash"), hoverinfo="skip"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="memorised token (in order of position)")
    fig.update_yaxes(title_text="probe accuracy (%)", range=[0, 105])
    mean = lambda accs: 100 * sum(accs) / len(accs)  # noqa: E731
    cap = caption or caption_text(
        f"Ridge probes on the SSM state at the separator ({result['features']} numbers per layer), fitted on "
        f"{result['n_train']} sequences, tested on {result['n_test']}; chance {100 * result['chance']:.0f}%",
        "Mean over colours: " + "; ".join(f"{lab} {mean(v):.1f}%" for lab, v in zip(labels, values)))
    return finish(fig, title or "What the state stores", cap)
