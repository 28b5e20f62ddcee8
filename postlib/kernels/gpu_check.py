"""``make gpu-check``: every Triton kernel checked against its reference and timed on a GPU.

    PYTHONPATH=. python -m postlib.kernels.gpu_check --out postlib/bench/results/gpu_check.json [--quick]

Runs from the source tree with no install; needs only torch, triton and numpy.
Every module in ``postlib/kernels/`` that defines ``gpu_check(device, quick) -> list[dict]``
is run (``kernel_modules()`` finds them, so a new kernel needs no edit here);
a row with ``ok: False`` is a failed correctness check. A module named with
``--modules`` that does not import (a typo, say) is a failed check too. Writes a JSON file (rows plus
provenance: GPU name, capability, versions, date), prints a summary table and
exits 1 if any check failed, 2 if there is no CUDA device.

``--smoke`` runs the same checks at tiny sizes through the Triton interpreter
on CPU (``TRITON_INTERPRET=1``), so the script itself is tested without a GPU
(``tests/kernels/test_gpu_check.py``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

KERNELS_PACKAGE = "postlib.kernels"


def kernel_modules() -> list[str]:
    """Every kernel module that defines ``gpu_check``, found by reading the source (no Triton import needed)."""
    folder = Path(__file__).resolve().parent
    names = []
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "gpu_check":
            continue
        if "\ndef gpu_check(" in path.read_text(encoding="utf-8"):
            names.append(f"{KERNELS_PACKAGE}.{path.stem}")
    return names

NO_CUDA_EXIT = 2


def run_module(module_name: str, device: str, quick: bool) -> tuple[str, list[dict]]:
    """(status, rows) for one kernel module; an exception becomes a failed row, never a crash."""
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - report, keep checking the other kernels
        return f"error: import failed ({err})", [dict(kernel=module_name, check="import", ok=False, error=repr(err))]
    if not hasattr(module, "gpu_check"):
        return "error: no gpu_check(device, quick)", [dict(kernel=module_name, check="gpu_check defined", ok=False)]
    t0 = time.perf_counter()
    try:
        rows = list(module.gpu_check(device, quick))
    except Exception as err:  # noqa: BLE001
        tb = traceback.format_exc(limit=4)
        return f"error: {type(err).__name__}: {err}", [dict(kernel=module_name, check="gpu_check ran", ok=False,
                                                          error=tb)]
    for row in rows:
        row.setdefault("kernel", module_name.rsplit(".", 1)[-1])
    failed = sum(1 for r in rows if r.get("ok") is False)
    return f"{'ok' if not failed else f'{failed} failed'} ({time.perf_counter() - t0:.1f} s)", rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def print_summary(modules: dict[str, str], rows: list[dict]) -> None:
    for name, status in modules.items():
        print(f"{name:36s} {status}")
    cols = ["kernel", "check", "dtype", "length_q", "length_k", "length", "head_dim", "causal", "rel_rms",
            "triton_ms", "sdpa_ms", "triton_tflops", "speedup_vs_sdpa", "ok"]
    cols = [c for c in cols if any(c in r for r in rows)]
    table = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postlib.kernels.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="postlib/bench/results/gpu_check.json", help="results JSON path")
    parser.add_argument("--quick", action="store_true", help="fewer shapes and lengths")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on CPU through the Triton interpreter (tests the script, not a GPU)")
    parser.add_argument("--modules", default=None, help="comma-separated module names (default: every kernel module with gpu_check)")
    args = parser.parse_args(argv)

    if args.smoke:
        # Triton reads this when a kernel is decorated, i.e. when its module is imported below.
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    if args.smoke:
        device = "cpu"
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; run it on a GPU (or use --smoke to test the script "
              "on CPU through the Triton interpreter)", file=sys.stderr)
        return NO_CUDA_EXIT
    else:
        device = "cuda"
    from ..bench.core import provenance

    names = [m.strip() for m in args.modules.split(",")] if args.modules else kernel_modules()
    modules: dict[str, str] = {}
    rows: list[dict] = []
    t0 = time.perf_counter()
    for name in names:
        status, module_rows = run_module(name, device, args.quick)
        modules[name] = status
        rows.extend(module_rows)
        print(f"[{time.perf_counter() - t0:6.1f} s] {name}: {status}", flush=True)
    failed = [r for r in rows if r.get("ok") is False]
    doc = {"title": "make gpu-check: Triton kernels vs their references, and timings",
           "notes": ("smoke run: tiny sizes, Triton interpreter on CPU (timings meaningless)" if args.smoke
                     else ("quick run" if args.quick else "full run")),
           "provenance": provenance(device), "modules": modules, "rows": rows,
           "failed_checks": len(failed), "wall_s": round(time.perf_counter() - t0, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    print_summary(modules, rows)
    print(f"wrote {out}; {len(failed)} failed check(s) of {sum('ok' in r for r in rows)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
