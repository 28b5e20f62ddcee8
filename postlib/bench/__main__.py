"""``python -m postlib.bench``: sweep mixers over lengths, or record the memory wall.

Examples::

    python -m postlib.bench --mixers softmax,mamba --lengths 256,512,1024 --out /tmp/mixers.json
    python -m postlib.bench --memory-wall --lengths 1024,2048,4096 --out /tmp/wall.json
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from .measure import MODES, measure_mixers
from .memory_wall import fit_rows, memory_wall
from .results_io import save_results

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m postlib.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", type=_str_list, default=None,
                   help="comma-separated mixer names (default: every registered mixer)")
    p.add_argument("--lengths", type=_int_list, default=[256, 512, 1024, 2048, 4096],
                   help="comma-separated sequence lengths")
    p.add_argument("--d-model", type=int, default=64, help="model width (mixer sweep)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--modes", type=_str_list, default=list(MODES), help=f"subset of {','.join(MODES)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for the run; 1 avoids intra-op barrier stalls on a shared machine")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--config", type=json.loads, default=None,
                   help='mixer constructor kwargs as JSON, for all mixers or per name, e.g. '
                        '\'{"linformer": {"max_length": 4096}}\'')
    p.add_argument("--max-mib", type=float, default=None,
                   help="skip configurations whose estimated working set exceeds this many MiB")
    p.add_argument("--memory-wall", action="store_true",
                   help="instead of mixers: flash_attention (torch) vs softmax_attention, time and peak memory")
    p.add_argument("--head-dim", type=int, default=64, help="memory wall: head dimension")
    p.add_argument("--heads", type=int, default=1, help="memory wall: number of heads")
    p.add_argument("--block-size", type=int, default=64, help="memory wall: flash key/value tile")
    p.add_argument("--title", default=None)
    p.add_argument("--notes", default="")
    p.add_argument("--out", default=None, help="results JSON path (a sibling .csv is written too)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _print_table(rows: list[dict]) -> None:
    print(f"{'name':28s} {'mode':17s} {'length':>7s} {'time_ms':>10s} {'peak_MiB':>9s}  status")
    for r in rows:
        t = "" if r["time_ms"] is None else f"{r['time_ms']:.3f}"
        m = "" if r["peak_mem_bytes"] is None else f"{r['peak_mem_bytes'] / 2**20:.2f}"
        print(f"{r['name']:28s} {r['mode']:17s} {r['length']:7d} {t:>10s} {m:>9s}  {r['status']}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    dtype = DTYPES[args.dtype]
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)  # recorded as torch_threads in the provenance
    if args.memory_wall:
        rows, fits = memory_wall(args.lengths, head_dim=args.head_dim, batch=args.batch, heads=args.heads,
                                 block_size=args.block_size, device=args.device, dtype=dtype,
                                 repeats=args.repeats, warmup=args.warmup, progress=not args.quiet)
        title = args.title or "Memory wall: tiled flash attention vs the materialised reference (forward)"
    else:
        from ..registry import list_mixers
        names = args.mixers or list_mixers()
        rows = measure_mixers(names, args.lengths, d_model=args.d_model, batch=args.batch, modes=args.modes,
                              device=args.device, dtype=dtype, repeats=args.repeats, warmup=args.warmup,
                              memory=not args.no_memory, progress=not args.quiet, mixer_config=args.config,
                              max_bytes=None if args.max_mib is None else int(args.max_mib * 2**20))
        fits = fit_rows(rows)
        title = args.title or f"Mixers, d_model={args.d_model}, batch={args.batch}"
    _print_table(rows)
    for name, fit in fits.items():
        print(f"fitted exponent  {name}: " + ", ".join(f"{k} ~ L^{v:.2f}" for k, v in fit.items()))
    if args.out:
        path = save_results(rows, args.out, title=title, notes=args.notes, extra={"fits": fits})
        print(f"wrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
