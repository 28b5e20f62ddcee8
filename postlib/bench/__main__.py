"""``python -m postlib.bench <experiment> [options]``: run one recorded experiment and save it.

    python -m postlib.bench --help                        # the experiments
    python -m postlib.bench mixers --mixers softmax,mamba --lengths 256,512,1024 --out /tmp/mixers.json
    python -m postlib.bench memory-wall --lengths 1024,2048,4096
    python -m postlib.bench scan-crossover --dims 16,256

Each experiment lives in ``postlib/bench/experiments/<name>.py`` (see that
package). Without ``--out`` the record goes to ``postlib/bench/results/<RESULT>``,
the file the chapters read, with the command's wall time (``wall_s``). ``--threads`` sets ``torch.set_num_threads`` for the
run (recorded in the provenance; one thread avoids intra-op stalls on a busy machine).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .experiments import experiments
from .results_io import RESULTS_DIR, save_results


def build_parser() -> argparse.ArgumentParser:
    found = experiments()
    p = argparse.ArgumentParser(prog="python -m postlib.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for command, module in found.items():
        sp = sub.add_parser(command, help=module.SUMMARY, description=module.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sp)
        threads = getattr(module, "THREADS", None)
        sp.add_argument("--threads", type=int, default=threads,
                        help=f"torch.set_num_threads for the run (default: {threads or 'torch default'})")
        sp.add_argument("--notes", default="", help="free text saved with the record (say the machine's load)")
        sp.add_argument("--out", default=None, help=f"results JSON path (default: {RESULTS_DIR}/{module.RESULT})")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.set_defaults(_module=module)
    return p


def _print_rows(rows: list[dict]) -> None:
    if not rows:
        return
    keys = [k for k in ("name", "mode", "length", "time_ms", "peak_mem_bytes", "status") if k in rows[0]] or list(rows[0])[:6]
    print("  ".join(f"{k:>14s}" for k in keys))
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k)
            cells.append(f"{v:14.4g}" if isinstance(v, float) else f"{str(v if v is not None else ''):>14s}")
        print("  ".join(cells))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)  # recorded as torch_threads in the provenance
    started = time.monotonic()
    doc = dict(args._module.record(args))
    doc.setdefault("wall_s", round(time.monotonic() - started, 1))   # the whole command, saved with the record
    rows, title = doc.pop("rows"), doc.pop("title")
    notes = " ".join(n for n in (doc.pop("notes", ""), args.notes) if n)
    _print_rows(rows)
    for name, fit in (doc.get("fits") or {}).items():
        print(f"fitted exponent  {name}: " + ", ".join(f"{k} ~ L^{v:.2f}" for k, v in fit.items()))
    out = args.out or RESULTS_DIR / args._module.RESULT
    path = save_results(rows, out, title=title, notes=notes, extra=doc)
    print(f"wrote {path} and {path.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
