"""The outlook chapter's roofline on CPU: measured throughput of the IO-aware forms against their intensity.

Every point's FLOPs and bytes come from the formulas of ``postlib.outlook.roofline`` (the same
on every machine); only the times are measured. The roofs are measured too: the peak FLOP/s of
an fp32 matmul and the bandwidth of a large copy, on the same thread count. GPU points are not
recorded here: they come from ``make gpu-check`` (``gpu_check.json``) through
``postlib.outlook.roofline.gpu_points``.

    python -m postlib.bench roofline      # records postlib/bench/results/cpu_roofline.json
"""
from __future__ import annotations

import torch

from ._args import int_list

SUMMARY = "roofline: arithmetic intensity (counted) vs throughput (measured) of flash tiling, scans, linear attention"
RESULT = "cpu_roofline.json"
THREADS = 1          # one thread: the roofs and the points on the same core, steadier on a shared CPU


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[512, 2048], help="sequence lengths of the points")
    parser.add_argument("--groups", type=int, default=4, help="batch·heads of the attention points")
    parser.add_argument("--dim", type=int, default=64, help="head dim (attention), channels (scan)")
    parser.add_argument("--state", type=int, default=16, help="state size N of the scan")
    parser.add_argument("--tile", type=int, default=64, help="key tile of flash, chunk of linear attention")
    parser.add_argument("--matmul-n", type=int, default=512, help="n of the n×n matmul that measures the peak")
    parser.add_argument("--copy-mib", type=int, default=64, help="MiB copied to measure the bandwidth")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per point (their median)")
    parser.add_argument("--roof-repeats", type=int, default=20,
                        help="timed runs per roof (their fastest: the roof is what the machine can do)")


def record(args) -> dict:
    from ...outlook.roofline import cpu_points, default_shapes, measure_roofs

    roofs = measure_roofs(matmul_n=args.matmul_n, copy_mib=args.copy_mib, repeats=args.roof_repeats)
    rows = []
    for length in args.lengths:
        shapes = default_shapes(length, groups=args.groups, dim=args.dim, scan_dim=args.dim, state=args.state,
                                tile=args.tile)
        rows += cpu_points(shapes, repeats=args.repeats, progress=not args.quiet)
    notes = (f"fp32, no grad, {torch.get_num_threads()} torch thread(s); attention and linear attention on "
             f"({args.groups} batch·heads, L, {args.dim}), tile/chunk {args.tile}; scan on (1, {args.dim}, L, "
             f"{args.state}), chunk ⌈√L⌉. FLOPs and bytes from postlib.outlook.roofline's formulas (traffic "
             f"model: inputs once, outputs once, each materialised intermediate written and read once). "
             f"Roofs: the fastest of {args.roof_repeats} runs of a {args.matmul_n}³ fp32 matmul and of a "
             f"copy of {args.copy_mib} MiB into a preallocated buffer. "
             f"Medians of {args.repeats} runs.")
    return {"title": "Roofline points on CPU (measured times, counted FLOPs and bytes)", "rows": rows,
            "notes": notes, "roofs": roofs}
