"""Sparse (sliding-window) attention against dense attention on CPU: time, peak memory, exponents, crossover.

    python -m postlib.bench sparse-attention                       # the defaults the book records
    python -m postlib.bench sparse-attention --lengths 1024,2048 --out /tmp/s.json

Forward, batch 1, one head of 64, causal, ``window=256`` (each token sees itself and the 128
before it). Three forms: ``sparse_attention(backend="torch")`` (the block-sparse PyTorch form),
dense ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` (PyTorch's fused
kernel; up to ``--dense-max``), and the materialised reference ``softmax_attention`` (the L × L
scores; up to ``--materialised-max``). The record holds the fitted log-log exponents of time
and memory, the sparse form's time exponent from 2k to 32k (the target is <= 1.15), its peak
at 16k (the target is < 256 MiB, where dense fp32 scores alone would take 1 GiB) and the
crossover length where the sparse form gets faster than SDPA.
"""
from __future__ import annotations

import math

import torch

from ..measure import fit_exponent, measure_functions
from ._args import add_device_arguments, int_list

SUMMARY = "sparse_attention (sliding window, block-sparse torch) vs dense SDPA and the materialised reference"
RESULT = "cpu_sparse_attention.json"
SPARSE, SDPA, MATERIALISED = "sparse_attention (torch)", "SDPA (dense, fused)", "softmax_attention (materialised)"


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384, 32768])
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--dense-max", type=int, default=16384, help="longest length for dense SDPA")
    parser.add_argument("--materialised-max", type=int, default=8192,
                        help="longest length for the materialised reference (its scores take 4·L² bytes)")
    add_device_arguments(parser)


def crossover(rows: list[dict], fast: str, slow: str) -> float | None:
    """Length where ``fast`` starts to beat ``slow`` in time (log-log interpolation between measured lengths)."""
    times = {}
    for r in rows:
        if r["status"] == "ok":
            times.setdefault(r["name"], {})[r["length"]] = r["time_ms"]
    common = sorted(set(times.get(fast, {})) & set(times.get(slow, {})))
    ratio = [(n, math.log(times[fast][n] / times[slow][n])) for n in common]
    if ratio and ratio[0][1] < 0:
        return float(ratio[0][0])         # already faster at the shortest length measured
    for (n0, r0), (n1, r1) in zip(ratio, ratio[1:]):
        if r0 >= 0 > r1:
            t = r0 / (r0 - r1)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return None


def record(args) -> dict:
    from ...attention import softmax_attention
    from ...sparse import sparse_attention

    dtype = {"float32": torch.float32, "float64": torch.float64}.get(args.dtype)
    if dtype is None:
        raise SystemExit("sparse-attention measures float32 or float64 on CPU")

    def inputs(length):
        gen = torch.Generator().manual_seed(length)
        return [torch.randn(1, 1, length, args.head_dim, generator=gen).to(args.device, dtype) for _ in range(3)]

    def sparse(length):
        q, k, v = inputs(length)
        return lambda: sparse_attention(q, k, v, "sliding", causal=True, window=args.window, backend="torch",
                                        tile=args.tile)

    def dense(length):
        if length > args.dense_max:
            raise MemoryError("beyond --dense-max: not measured")
        q, k, v = inputs(length)
        return lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    def materialised(length):
        if length > args.materialised_max:
            raise MemoryError("beyond --materialised-max: not measured")
        q, k, v = inputs(length)
        return lambda: softmax_attention(q, k, v, causal=True)

    with torch.no_grad():
        rows = measure_functions({SPARSE: sparse, SDPA: dense, MATERIALISED: materialised}, args.lengths,
                                 repeats=args.repeats, warmup=args.warmup, device=args.device, progress=not args.quiet,
                                 batch=1, d_model=args.head_dim, dtype=dtype)
    for r in rows:
        r.update(window=args.window, head_dim=args.head_dim, heads=1, causal=True, tile=args.tile,
                 dense_scores_bytes=4 * r["length"] ** 2)
        if r["name"] == SDPA and r["length"] > args.dense_max:
            r["status"] = "skipped: beyond --dense-max"
        if r["name"] == MATERIALISED and r["length"] > args.materialised_max:
            r["status"] = "skipped: beyond --materialised-max"
    fits = {}
    for name in (SPARSE, SDPA, MATERIALISED):
        pts = [(r["length"], r["time_ms"], r["peak_mem_bytes"]) for r in rows if r["name"] == name and r["status"] == "ok"]
        if len(pts) >= 2:
            fits[name] = {"time_ms": round(fit_exponent([p[0] for p in pts], [p[1] for p in pts]), 3),
                          "peak_mem_bytes": round(fit_exponent([p[0] for p in pts], [max(p[2], 1) for p in pts]), 3)}
    ok_sparse = {r["length"]: r for r in rows if r["name"] == SPARSE and r["status"] == "ok"}
    span = [n for n in sorted(ok_sparse) if 2048 <= n <= 32768]
    targets = {}
    if len(span) >= 2:
        targets["sparse_time_exponent_2k_32k"] = round(fit_exponent(span, [ok_sparse[n]["time_ms"] for n in span]), 3)
        targets["sparse_time_exponent_target"] = 1.15
    if 16384 in ok_sparse:
        targets["sparse_peak_bytes_16k"] = ok_sparse[16384]["peak_mem_bytes"]
        targets["sparse_peak_target_bytes"] = 256 * 2**20
        targets["dense_scores_bytes_16k"] = 4 * 16384 ** 2
    return {"title": f"Sliding-window sparse attention vs dense attention on CPU (causal, window {args.window}, "
                     f"one head of {args.head_dim}, forward)",
            "rows": rows, "fits": fits, "targets": targets,
            "crossover_vs_sdpa": crossover(rows, SPARSE, SDPA),
            "crossover_vs_materialised": crossover(rows, SPARSE, MATERIALISED)}
