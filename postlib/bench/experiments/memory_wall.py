"""The memory wall: tiled (flash) attention against the materialised reference.

``softmax_attention`` builds the (L × L) score matrix, so its peak memory grows
as L²; ``flash_attention`` visits keys one tile at a time and keeps only
(L × block) scores, so its memory grows as L. Both still do L² work, so their
*time* scales alike. ``memory_wall`` measures both and fits the exponents
(chapter 1 runs it live too, as ``postlib.bench.memory_wall``).

    python -m postlib.bench memory-wall           # records postlib/bench/results/cpu_attention_memory.json
"""
from __future__ import annotations

from typing import Iterable

import torch

from ..measure import fit_rows, measure_functions
from ._args import DTYPES, add_device_arguments, int_list

SUMMARY = "the memory wall: flash_attention (torch tiles) vs softmax_attention, time and peak memory"
RESULT = "cpu_attention_memory.json"
REFERENCE = "softmax_attention"
TILED = "flash_attention (torch)"


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=64, help="flash key/value tile")
    add_device_arguments(parser)
    parser.add_argument("--title", default=None)


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
    from ...attention import flash_attention, softmax_attention

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


def record(args) -> dict:
    rows, fits = memory_wall(args.lengths, head_dim=args.head_dim, batch=args.batch, heads=args.heads,
                             block_size=args.block_size, device=args.device, dtype=DTYPES[args.dtype],
                             repeats=args.repeats, warmup=args.warmup, progress=not args.quiet)
    return {"title": args.title or "Memory wall: tiled flash attention vs the materialised reference (forward)",
            "rows": rows, "fits": fits}
