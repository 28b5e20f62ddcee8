"""Tiled (flash) attention against the materialised reference: time and peak memory."""
from __future__ import annotations

from ..memory_wall import memory_wall
from ._args import DTYPES, add_device_arguments, int_list

SUMMARY = "the memory wall: flash_attention (torch tiles) vs softmax_attention, time and peak memory"
RESULT = "cpu_attention_memory.json"


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=64, help="flash key/value tile")
    add_device_arguments(parser)
    parser.add_argument("--title", default=None)


def record(args) -> dict:
    rows, fits = memory_wall(args.lengths, head_dim=args.head_dim, batch=args.batch, heads=args.heads,
                             block_size=args.block_size, device=args.device, dtype=DTYPES[args.dtype],
                             repeats=args.repeats, warmup=args.warmup, progress=not args.quiet)
    return {"title": args.title or "Memory wall: tiled flash attention vs the materialised reference (forward)",
            "rows": rows, "fits": fits}
