"""Timing rows shared by the causal kernels' ``gpu_check``: Triton against causal SDPA and, where importable,
fla-core's chunked kernel for the same operator (the book's targets: beat SDPA from T = 4096, reach half of fla)."""
from __future__ import annotations

import importlib

import torch


def load_fla(module: str, name: str, smoke: bool):
    """(fla function or None, note): fla is a GPU library; any import failure just means "not available"."""
    if smoke:
        return None, "skipped in smoke run"
    try:
        return getattr(importlib.import_module(module), name), ""
    except Exception as exc:  # noqa: BLE001 - any failure (no fla, no GPU build) is reported, not raised
        return None, f"fla not available ({type(exc).__name__}: {exc})"


def causal_timing_rows(kernel: str, label: str, make_runs, device: str, quick: bool, fla_note: str = "",
                       fla_lengths=None) -> list[dict]:
    """Time ``make_runs(q, k, v) -> (triton thunk, fla thunk or None)`` against causal SDPA on the same q, k, v.

    bf16, head_dim 64, (batch, heads) = (4, 16) — (1, 8) with ``quick`` — at T = 1024 … 8192; on CPU (smoke run,
    Triton interpreter) tiny fp32 sizes whose timings mean nothing. fla is timed at ``fla_lengths`` (all if None).
    """
    import torch.nn.functional as F

    from ..bench import time_fn
    smoke = not str(device).startswith("cuda")
    B, H, D = (1, 2, 16) if smoke else ((1, 8, 64) if quick else (4, 16, 64))
    lengths = (64, 128) if smoke else ((1024, 4096, 8192) if quick else (1024, 2048, 4096, 8192))
    dtype = torch.float32 if smoke else torch.bfloat16
    repeats, warmup = (1, 1) if smoke else (20, 5)
    gen = torch.Generator(device="cpu").manual_seed(1)
    rows = []
    for L in lengths:
        q, k, v = ((torch.randn(B, H, L, D, generator=gen) * D ** -0.25).to(device=device, dtype=dtype)
                   for _ in range(3))
        triton_run, fla_run = make_runs(q, k, v)
        with torch.no_grad():
            t_tri = time_fn(triton_run, repeats=repeats, warmup=warmup, device=device)
            t_sdpa = time_fn(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), repeats=repeats,
                             warmup=warmup, device=device)
            row = dict(kernel=kernel, check=f"timing {label} {dtype}", length=L, batch=B, heads=H, head_dim=D,
                       triton_ms=t_tri, sdpa_causal_ms=t_sdpa, speedup_vs_sdpa=t_sdpa / t_tri)
            if L >= 4096:  # the book's target: beat causal SDPA from T = 4096 (a target, not a failed check)
                row["target_beats_sdpa"] = t_sdpa > t_tri
            if fla_lengths is None or L in fla_lengths:
                if fla_run is not None:
                    t_fla = time_fn(fla_run, repeats=repeats, warmup=warmup, device=device)
                    row.update(fla_chunk_ms=t_fla, throughput_vs_fla=t_fla / t_tri,
                               target_half_of_fla=t_fla / t_tri >= 0.5)
                else:
                    row.update(fla_chunk_ms=None, note=fla_note)
        rows.append(row)
    return rows
