"""The memory wall: tiled (flash) attention against the materialised reference.

``softmax_attention`` builds the (L × L) score matrix, so its peak memory grows
as L²; ``flash_attention`` visits keys one tile at a time and keeps only
(L × block) scores, so its memory grows as L. Both still do L² work, so their
*time* scales alike. ``memory_wall`` measures both and fits the exponents.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .measure import fit_exponent, measure_functions

REFERENCE = "softmax_attention"
TILED = "flash_attention (torch)"


def _inputs(length, batch, heads, head_dim, device, dtype, seed=0):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return [torch.randn(batch, heads, length, head_dim, generator=gen).to(device=device, dtype=dtype)
            for _ in range(3)]


def memory_wall(lengths: Iterable[int], *, head_dim: int = 64, batch: int = 1, heads: int = 1,
                block_size: int = 64, causal: bool = False, device="cpu", dtype=torch.float32,
                repeats: int = 3, warmup: int = 1, progress: bool = False) -> tuple[list[dict], dict]:
    """Forward time and peak memory of both forms at each length.

    Returns ``(rows, fits)`` where ``fits[name] = {"time_ms": exponent, "peak_mem_bytes": exponent}``.
    """
    from ..attention import flash_attention, softmax_attention

    def reference(length):
        q, k, v = _inputs(length, batch, heads, head_dim, device, dtype)
        return lambda: softmax_attention(q, k, v, causal=causal)

    def tiled(length):
        q, k, v = _inputs(length, batch, heads, head_dim, device, dtype)
        return lambda: flash_attention(q, k, v, causal=causal, block_size=block_size, backend="torch")

    with torch.no_grad():
        rows = measure_functions({TILED: tiled, REFERENCE: reference}, lengths, repeats=repeats, warmup=warmup,
                                 device=device, memory=True, progress=progress, batch=batch,
                                 d_model=heads * head_dim, dtype=dtype)
    for r in rows:
        r.update(heads=heads, head_dim=head_dim, block_size=block_size, causal=causal)
    return rows, fit_rows(rows)


def fit_rows(rows: list[dict], metrics=("time_ms", "peak_mem_bytes")) -> dict:
    """Fitted log-log exponent per name (and mode) and metric, over the rows with status "ok"."""
    fits: dict[str, dict] = {}
    groups: dict[str, list[dict]] = {}
    modes = {r.get("mode") for r in rows}
    for r in rows:
        if r.get("status", "ok") == "ok":
            key = r["name"] if len(modes) == 1 else f"{r['name']} ({r['mode']})"
            groups.setdefault(key, []).append(r)
    for key, group in groups.items():
        fits[key] = {}
        for metric in metrics:
            pts = [(g["length"], g[metric]) for g in group if g.get(metric)]
            if len({p[0] for p in pts}) >= 2:
                fits[key][metric] = round(fit_exponent(*zip(*pts)), 3)
    return fits
