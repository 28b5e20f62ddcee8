"""Every registered mixer (or a chosen few) swept over lengths: time and peak memory."""
from __future__ import annotations

import json

from ..measure import MODES, fit_rows, measure_mixers
from ._args import DTYPES, add_device_arguments, int_list, str_list

SUMMARY = "sweep registered mixers over lengths: time and peak memory, forward and backward"
RESULT = "cpu_mixers.json"


def add_arguments(parser) -> None:
    parser.add_argument("--mixers", type=str_list, default=None,
                        help="comma-separated mixer names (default: every registered mixer)")
    parser.add_argument("--lengths", type=int_list, default=[256, 512, 1024, 2048, 4096],
                        help="comma-separated sequence lengths")
    parser.add_argument("--d-model", type=int, default=64, help="model width")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--modes", type=str_list, default=list(MODES), help=f"subset of {','.join(MODES)}")
    add_device_arguments(parser)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--config", type=json.loads, default=None,
                        help='mixer constructor kwargs as JSON, for all mixers or per name, e.g. '
                             '\'{"linformer": {"max_length": 4096}}\'')
    parser.add_argument("--max-mib", type=float, default=None,
                        help="skip configurations whose memory estimate reaches this many MiB (before running them)")
    parser.add_argument("--title", default=None)


def record(args) -> dict:
    from ...registry import list_mixers
    names = args.mixers or list_mixers()
    rows = measure_mixers(names, args.lengths, d_model=args.d_model, batch=args.batch, modes=args.modes,
                          device=args.device, dtype=DTYPES[args.dtype], repeats=args.repeats, warmup=args.warmup,
                          memory=not args.no_memory, progress=not args.quiet, mixer_config=args.config,
                          max_bytes=None if args.max_mib is None else int(args.max_mib * 2**20))
    return {"title": args.title or f"Mixers, d_model={args.d_model}, batch={args.batch}", "rows": rows,
            "fits": fit_rows(rows)}
