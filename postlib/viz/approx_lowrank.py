"""Figures for the "Low rank and hashing" chapter: spectra, Linformer rank, LSH buckets, reversible memory.

Pure builders (data or sizes in → ``go.Figure`` out); every number comes from
``postlib.attention.linformer`` / ``reformer`` / ``reversible``.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from ..attention.linformer import (linformer_attention, mean_pool_projection, random_projection, singular_values,
                                   theorem2_epsilon, theorem2_projections)
from ..attention.reformer import (SELF_SCORE, collision_probability, hyperplane_collision_theory, lsh_attention,
                                  lsh_hash, topk_in_bucket)
from ..attention.reversible import ReversibleBlock, ReversibleSequence, saved_activation_bytes
from ..attention.softmax import attention_weights
from .approx import demo_qk, exact_and_approx_maps
from . import palette
from .theme import caption_text, coloraxis, finish


def spectrum_figure(maps: dict, *, title: str | None = None, caption: str | None = None) -> go.Figure:
    """Normalised singular values σ_i/σ_1 (left) and cumulative energy Σ_{j≤i}σ_j²/Σσ² (right) of
    attention matrices. ``maps``: {label: tensor (..., L, L)} — several matrices per label are averaged."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("σ_i / σ_1", "energy in the top i"), horizontal_spacing=0.14)
    for (label, P), style in zip(maps.items(), palette.series_styles(list(maps))):
        sv = singular_values(torch.as_tensor(P)).reshape(-1, torch.as_tensor(P).shape[-1])
        norm = (sv / sv[:, :1]).mean(0).numpy()
        energy = (torch.cumsum(sv ** 2, -1) / (sv ** 2).sum(-1, keepdim=True)).mean(0).numpy()
        idx = np.arange(1, len(norm) + 1)
        fig.add_trace(go.Scatter(x=idx, y=norm, name=label, legendgroup=label, line=style), 1, 1)
        fig.add_trace(go.Scatter(x=idx, y=energy, name=label, legendgroup=label, showlegend=False, line=style), 1, 2)
    fig.update_yaxes(type="log", title="σ_i / σ_1", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], title="Σ_(j≤i) σ_j² / Σ σ²", row=1, col=2)
    fig.update_xaxes(title="index i")
    default = ("Singular values of attention matrices normalised by the largest (left) and the share of the energy "
               "in the top i of them (right), averaged over the matrices of each kind (cf. Linformer Fig. 1)")
    return finish(fig, title or "Attention matrices are nearly low rank", caption_text(caption or default), height=380)


def linformer_rank_curves(ranks=(1, 2, 4, 8, 16, 32, 64), length: int = 128, head_dim: int = 16, seeds=range(3),
                          delta: float = 0.1) -> dict:
    """Relative output error ‖out − softmax‖/‖softmax‖ of rank-k attention against k on the structured demo
    queries (mean over seeds): Linformer with untrained projections (mean pooling; random JL; Theorem 2's
    E = δR, F = e^{−δ}R), and the truncated SVD of the exact map (the best rank-k map in Frobenius norm,
    Eckart–Young). ``"theorem2_eps"``: the ε Theorem 2's inequality needs, median over query rows."""
    ranks = [r for r in ranks if r <= length]
    names = ("Linformer, mean-pool E = F", "Linformer, random JL E, F", f"Linformer, Theorem 2 (δ = {delta:g})",
             "best rank-k map (SVD)")
    curves = {name: [] for name in names}
    eps = []
    for r in ranks:
        errs = {name: [] for name in names}
        eps_r = []
        for s in seeds:
            q, k = demo_qk(length, head_dim, s)
            v = torch.randn(1, 1, length, head_dim, generator=torch.Generator().manual_seed(s + 50), dtype=torch.float64)
            P = attention_weights(q, k)
            ref = P @ v
            rel = lambda out: ((out - ref).norm() / ref.norm()).item()  # noqa: E731
            pool = mean_pool_projection(r, length)
            E2, F2 = theorem2_projections(r, length, delta, seed=s)
            errs[names[0]].append(rel(linformer_attention(q, k, v, pool, pool)))
            errs[names[1]].append(rel(linformer_attention(q, k, v, random_projection(r, length, s),
                                                          random_projection(r, length, s + 1))))
            errs[names[2]].append(rel(linformer_attention(q, k, v, E2, F2)))
            U, S, Vh = torch.linalg.svd(P[0, 0])
            errs[names[3]].append(rel(((U[:, :r] * S[:r]) @ Vh[:r]) @ v))
            eps_r.append(theorem2_epsilon(q, k, v, E2, F2).median().item())
        for name in names:
            curves[name].append(float(np.mean(errs[name])))
        eps.append(float(np.mean(eps_r)))
    return {"ranks": ranks, "length": length, "head_dim": head_dim, "seeds": len(list(seeds)), "delta": delta,
            "curves": curves, "theorem2_eps": eps}


def linformer_rank_figure(ranks=(1, 2, 4, 8, 16, 32, 64), length: int = 128, head_dim: int = 16,
                          seeds=range(3), delta: float = 0.1, curves: dict | None = None) -> go.Figure:
    """Output error of rank-k attention vs k: untrained projections (mean pooling, random JL, Theorem 2's
    construction) against the best rank-k map (truncated SVD of the exact map). ``curves`` from
    :func:`linformer_rank_curves` skips the measurement."""
    c = curves or linformer_rank_curves(ranks, length, head_dim, seeds, delta)
    names = list(c["curves"])
    styles = palette.series_styles(names)
    styles[-1] = dict(color=palette.NEUTRALS["ink"], dash="dash")     # the best map, not a method
    fig = go.Figure([go.Scatter(x=c["ranks"], y=ys, mode="lines+markers", name=name, line=style)
                     for (name, ys), style in zip(c["curves"].items(), styles)])
    fig.update_xaxes(type="log", title="rank k")
    fig.update_yaxes(type="log", title="‖out − softmax‖ / ‖softmax‖")
    caption = caption_text(
        f"Relative output error of rank-k attention against k on structured queries and keys, L = {c['length']}, "
        f"d = {c['head_dim']}, mean of {c['seeds']} seeds: Linformer with untrained projections E, F (mean "
        f"pooling; random JL; the construction of its Theorem 2, E = δR and F = e^(−δ)R with δ = {c['delta']:g}), "
        f"and the output of the best rank-k approximation of the exact map in Frobenius norm (truncated SVD, "
        f"dashed)")
    return finish(fig, "Error vs projection rank", caption)


def causality_figure(rank: int = 8, length: int = 48, head_dim: int = 16) -> go.Figure:
    """Linformer's effective map P̄·F next to the causal region: weight lands above the diagonal (the future)."""
    _, approx = exact_and_approx_maps("linformer", rank, length, head_dim)
    future = np.triu(np.abs(approx), 1).sum(1) / np.abs(approx).sum(1)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.14,
                        subplot_titles=(f"effective map, rank {rank}", "weight on future keys"))
    fig.add_trace(go.Heatmap(z=approx, colorscale=palette.SEQUENTIAL, showscale=False,
                             hovertemplate="query %{y}, key %{x}: %{z:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=[0, length - 1], y=[0, length - 1], mode="lines", showlegend=False,
                             line=dict(dash="dash", color=palette.NEUTRALS["paper"])), 1, 1)
    fig.add_trace(go.Bar(x=list(range(length)), y=future, marker_color=palette.color("linformer"), showlegend=False),
                  1, 2)
    fig.update_xaxes(title="key j", constrain="domain", row=1, col=1)
    fig.update_yaxes(title="query i", autorange="reversed", scaleanchor="x", constrain="domain", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title="share of |weight|", row=1, col=2)
    fig.update_xaxes(title="query i", row=1, col=2)
    caption = caption_text(
        f"Linformer's effective attention map at rank {rank}, L = {length} (left; dashed: the diagonal) and, per "
        f"query, the share of its |weight| on future keys (right): E·K mixes every position into every projected "
        f"key, so no causal mask can apply")
    return finish(fig, "Why Linformer cannot be causal", caption, height=380)


def collision_figure(bucket_counts=(2, 4, 8, 16), dim: int = 64, n_trials: int = 2000) -> go.Figure:
    """P[h(x) = h(y)] against the angle θ between x and y: measured for several bucket counts, theory 1 − θ/π for 2."""
    angles = torch.linspace(0, math.pi, 25, dtype=torch.float64)
    fig = go.Figure()
    for b, col in zip(bucket_counts, palette.ramp(len(bucket_counts))):
        p = collision_probability(angles, b, dim, n_trials)
        fig.add_trace(go.Scatter(x=angles.numpy(), y=p.numpy(), mode="markers+lines", name=f"{b} buckets",
                                 line=dict(color=col)))
    fig.add_trace(go.Scatter(x=angles.numpy(), y=hyperplane_collision_theory(angles).numpy(), mode="lines",
                             name="theory, 2 buckets: 1 − θ/π", line=dict(color=palette.NEUTRALS["ink"], dash="dash")))
    fig.update_xaxes(title="angle θ between x and y (radians)")
    fig.update_yaxes(title="P[same bucket]", range=[0, 1.02])
    caption = caption_text(
        f"Probability that angular LSH puts x and y in the same bucket against the angle between them, measured "
        f"over {n_trials} random rotations in d = {dim} for several bucket counts; dashed: the theory 1 − θ/π for "
        f"two buckets (one hyperplane)")
    return finish(fig, "Angular LSH: collisions vs angle", caption)


def bucket_recall_figure(bucket_counts=(4, 8, 16), rounds=(1, 2, 4, 8), length: int = 256, head_dim: int = 32,
                         topk: int = 4, seed: int = 0) -> go.Figure:
    """How many of each query's true top-k keys share its bucket in at least one of n_hashes rounds."""
    q, _ = demo_qk(length, head_dim, seed)
    fig = go.Figure()
    for b, col in zip(bucket_counts, palette.ramp(len(bucket_counts))):
        fig.add_trace(go.Scatter(x=list(rounds), y=[topk_in_bucket(q[0, 0], b, r, topk, seed) for r in rounds],
                                 mode="lines+markers", name=f"{b} buckets", line=dict(color=col)))
    fig.update_xaxes(title="hash rounds n_hashes", type="log")
    fig.update_yaxes(title=f"top-{topk} keys found", range=[0, 1.02])
    caption = caption_text(
        f"Fraction of each query's true top-{topk} keys that share its bucket in at least one of n_hashes rounds, "
        f"L = {length}, d = {head_dim}: more rounds recover more of them, more buckets fewer")
    return finish(fig, f"Recall of the top-{topk} keys", caption)


def lsh_sorted_figure(length: int = 64, head_dim: int = 16, n_buckets: int = 8, chunk_size: int = 8,
                      seed: int = 0) -> go.Figure:
    """The LSH attention map in token order (scattered) and re-ordered by bucket (a band of chunks)."""
    _, approx = exact_and_approx_maps("reformer", 1, length, head_dim, seed=seed, n_buckets=n_buckets,
                                      chunk_size=chunk_size)
    q, _ = demo_qk(length, head_dim, seed)
    b = lsh_hash(q, n_buckets, 1, seed)[0, 0, 0]
    order = torch.argsort(b * length + torch.arange(length)).numpy()
    sorted_map = approx[np.ix_(order, order)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("token order", "sorted by (bucket, position)"),
                        horizontal_spacing=0.14)
    hover = "%{y}, %{x}: %{z:.3f}<extra></extra>"
    coloraxis(fig, title="weight", cmin=0)
    fig.add_trace(go.Heatmap(z=approx, coloraxis="coloraxis", hovertemplate=hover), 1, 1)
    fig.add_trace(go.Heatmap(z=sorted_map, coloraxis="coloraxis", hovertemplate=hover), 1, 2)
    for c in range(0, length + 1, chunk_size):
        fig.add_shape(type="line", x0=-0.5, x1=length - 0.5, y0=c - 0.5, y1=c - 0.5,
                      line=dict(color=palette.NEUTRALS["paper"], width=0.5), row=1, col=2)
    for col in (1, 2):
        fig.update_yaxes(title="query (position)" if col == 1 else "query (sorted)", autorange="reversed",
                         scaleanchor="x" if col == 1 else "x2", constrain="domain", row=1, col=col)
        fig.update_xaxes(title="key (position)" if col == 1 else "key (sorted)", constrain="domain", row=1, col=col)
    caption = caption_text(
        f"LSH attention map with {n_buckets} buckets and one hash round, L = {length}, in token order (left) and "
        f"with queries and keys sorted by (bucket, position) (right), where it becomes a band of chunks of "
        f"{chunk_size} (white lines)")
    return finish(fig, "LSH attention: sorting by bucket", caption, height=380)


def lsh_rounds_curves(rounds=(1, 2, 4, 8), length: int = 128, head_dim: int = 16, n_buckets: int = 8,
                      chunk_size: int = 8, seeds=range(2)) -> dict:
    """Relative error of the LSH attention map against exact shared-QK softmax (self masked) vs hash rounds,
    with each key counted once across rounds (``dedup``, the paper's correction) and without; mean over seeds."""
    out = {"rounds": list(rounds), "length": length, "head_dim": head_dim, "n_buckets": n_buckets,
           "chunk_size": chunk_size, "seeds": len(list(seeds)), "dedup": [], "duplicates": []}
    eye = torch.eye(length, dtype=torch.float64)[None, None]
    for r in rounds:
        errs = {"dedup": [], "duplicates": []}
        for s in seeds:
            q, _ = demo_qk(length, head_dim, s)
            keys = torch.nn.functional.normalize(q, dim=-1)
            scores = (q @ keys.transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(
                torch.eye(length, dtype=torch.bool), SELF_SCORE)
            exact = torch.softmax(scores, -1)
            for key, dedup in (("dedup", True), ("duplicates", False)):
                approx = lsh_attention(q, eye, n_buckets, r, chunk_size, seed=s, dedup=dedup)
                errs[key].append(((approx - exact).norm() / exact.norm()).item())
        for key in errs:
            out[key].append(float(np.mean(errs[key])))
    return out


def lsh_rounds_figure(rounds=(1, 2, 4, 8), length: int = 128, head_dim: int = 16, curves: dict | None = None
                      ) -> go.Figure:
    """LSH attention's map error against the number of hash rounds, with and without counting each key once."""
    c = curves or lsh_rounds_curves(rounds, length, head_dim)
    names = ["each key once (paper)", "duplicates counted"]
    styles = palette.series_styles(["reformer", "reformer"])
    fig = go.Figure([go.Scatter(x=c["rounds"], y=c[key], mode="lines+markers", name=name, line=style)
                     for key, name, style in zip(("dedup", "duplicates"), names, styles)])
    fig.update_xaxes(type="log", title="hash rounds n_hashes")
    fig.update_yaxes(title="‖Â − A‖ / ‖A‖", rangemode="tozero")
    caption = caption_text(
        f"Relative error of the LSH attention map against exact shared-QK softmax attention, L = {c['length']}, "
        f"d = {c['head_dim']}, {c['n_buckets']} buckets, chunks of {c['chunk_size']}, mean of {c['seeds']} "
        f"seeds, when a key found by several rounds is counted once (the paper's correction: its scores "
        f"lowered by log N) or once per round",
        f"At {c['rounds'][-1]} rounds: {c['dedup'][-1]:.2f} against {c['duplicates'][-1]:.2f}")
    return finish(fig, "Hash rounds and duplicate keys", caption)


def reversible_memory_figure(depths=(1, 2, 4, 8, 16), width: int = 64, length: int = 128) -> go.Figure:
    """Bytes autograd keeps for backward vs depth: ordinary residual stack vs reversible stack (measured)."""
    x = torch.randn(1, length, 2 * width, requires_grad=True)
    rev, std = [], []
    for depth in depths:
        torch.manual_seed(0)
        m = ReversibleSequence([ReversibleBlock(nn.Sequential(nn.Linear(width, width), nn.GELU()),
                                                nn.Sequential(nn.Linear(width, width), nn.GELU()))
                                for _ in range(depth)])
        rev.append(saved_activation_bytes(m, x) / 2 ** 20)
        std.append(saved_activation_bytes(m.forward_standard, x) / 2 ** 20)
    fig = go.Figure([go.Scatter(x=list(depths), y=std, mode="lines+markers", name="ordinary residual layers",
                                line=dict(color=palette.NEUTRALS["muted"])),
                     go.Scatter(x=list(depths), y=rev, mode="lines+markers", name="reversible layers",
                                line=dict(color=palette.color("reformer")))])
    fig.update_xaxes(title="layers")
    fig.update_yaxes(title="MiB saved for backward", rangemode="tozero")
    caption = caption_text(
        f"Bytes autograd keeps for the backward pass against depth, measured (batch 1, L = {length}, width "
        f"{2 * width}): an ordinary residual stack keeps every layer's activations, a reversible one recomputes "
        f"them from the output")
    return finish(fig, "Activation memory kept for backward", caption)


@torch.no_grad()
def trained_attention_maps(model, tokens: torch.Tensor) -> torch.Tensor:
    """Softmax attention maps of every layer and head of a trained ``SequenceModel`` on ``tokens``:
    (layers · batch · heads, L, L). Recomputed from each softmax mixer's own projections of its input."""
    maps = []

    def hook(mixer, inputs, _out):
        q, k, _ = mixer.split_heads(inputs[0])
        maps.append(attention_weights(q, k, causal=mixer.causal).flatten(0, 1))

    handles = [b.mixer.register_forward_hook(hook) for b in model.blocks]
    try:
        model.eval()
        model(tokens)
    finally:
        for h in handles:
            h.remove()
    return torch.cat(maps).double()


def recall_model_maps(n_pairs: int = 6, steps: int = 300, d_model: int = 64, n_heads: int = 2,
                      seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, float]:
    """Train a small 2-layer softmax ``SequenceModel`` on associative recall with ``postlib.train``'s
    one recipe (on ``device``) and return its attention maps on held-out sequences (on the CPU), plus the
    final training loss — "real" attention matrices for the spectrum figure."""
    from ..tasks import associative_recall
    from ..train import train_on_task
    task = dict(n_pairs=n_pairs, n_keys=4 * n_pairs, n_values=4 * n_pairs)
    x, y, vocab = associative_recall(4000, seed=seed, **task)
    x_test, y_test, _ = associative_recall(256, seed=seed + 1, **task)
    result = train_on_task("softmax", (x, y), (x_test, y_test), vocab, d_model=d_model, n_layers=2, steps=steps,
                           batch_size=64, seed=seed, device=device, max_length=x.shape[1],
                           mixer_config={"n_heads": n_heads})
    return trained_attention_maps(result.model, x_test[:4].to(device)).cpu(), result.losses[-1][1]
