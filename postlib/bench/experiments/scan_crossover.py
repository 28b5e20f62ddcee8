"""The CPU crossover of the selective scan: which form wins at which state size.

At L = 4096, batch 1, N = 16 and a range of dim, every backend of
``postlib.ssm.selective_scan`` is timed *side by side*: each round runs every form
once (``postlib.bench.time_fn``, one call), in a rotating order, so that the load of
a shared machine hits all forms alike; the reported time is the median over rounds.
``mambapy``'s pscan (an independent PyTorch Blelloch scan on (B, L, D, N)) is timed
as a peer when installed, with the same Δ/A/B/C preparation and readout around it,
so only the scan itself differs. The ``auto`` rule (``postlib.ssm.scan.pick_backend``)
is read off this record; the Mamba chapter shows it.

    python -m postlib.bench scan-crossover        # records postlib/bench/results/cpu_scan_crossover.json
"""
from __future__ import annotations

import os
import statistics

import torch

from ..core import time_fn
from ._args import int_list

SUMMARY = "selective scan on CPU: sequential vs parallel vs chunked vs auto (vs mambapy), against dim·N"
RESULT = "cpu_scan_crossover.json"
FORMS = ("sequential", "parallel", "chunked", "auto")


def add_arguments(parser) -> None:
    parser.add_argument("--dims", type=int_list, default=[16, 32, 64, 128, 256, 512], help="channels (dim) to sweep")
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--state", type=int, default=16, help="state size N")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median over them)")


def _mambapy_scan():
    try:
        from mambapy.pscan import pscan
    except ImportError:
        return None

    def run(u, delta, A, B, C):
        dA = torch.exp(delta[..., None] * A[:, None, :]).transpose(1, 2).contiguous()        # (b, L, d, N)
        dBu = ((delta * u)[..., None] * B.transpose(1, 2)[:, None]).transpose(1, 2).contiguous()
        h = pscan(dA, dBu)
        return (h * C.transpose(1, 2)[:, :, None]).sum(-1).transpose(1, 2)
    return run


def crossover(dims=(16, 32, 64, 128, 256, 512), *, L: int = 4096, N: int = 16, batch: int = 1, rounds: int = 5,
              progress: bool = False) -> list[dict]:
    """Rows {name, dim, N, states=dim·N, length, time_ms (median), times_ms (all rounds), picked, ...}."""
    from ...ssm.scan import pick_backend, selective_scan

    peer = _mambapy_scan()
    rows = []
    for dim in dims:
        g = torch.Generator().manual_seed(dim)
        u = torch.randn(batch, dim, L, generator=g)
        delta = torch.rand(batch, dim, L, generator=g) * 0.1
        A = -torch.rand(dim, N, generator=g) - 0.5
        B, C = torch.randn(batch, N, L, generator=g), torch.randn(batch, N, L, generator=g)
        fns = {f: (lambda f=f: selective_scan(u, delta, A, B, C, backend=f)) for f in FORMS}
        if peer is not None:
            fns["mambapy pscan"] = lambda: peer(u, delta, A, B, C)
        times = {k: [] for k in fns}
        names = list(fns)
        with torch.no_grad():
            ref = fns["sequential"]()
            for k in names:            # warm-up, and every form must agree with the loop
                if not torch.allclose(fns[k](), ref, rtol=1e-3, atol=1e-3):
                    raise AssertionError(f"{k} disagrees with the sequential scan at dim={dim}")
            for r in range(rounds):
                for k in names[r % len(names):] + names[:r % len(names)]:
                    times[k].append(time_fn(fns[k], repeats=1, warmup=0))
        picked = pick_backend(u, N)
        for k in names:
            rows.append(dict(name=k, length=L, batch=batch, d_model=dim, dim=dim, N=N, states=dim * N,
                             mode="forward", time_ms=statistics.median(times[k]), times_ms=times[k],
                             peak_mem_bytes=None, device="cpu", dtype="float32", status="ok",
                             picked=picked if k == "auto" else ""))
        if progress:
            print(dim, {k: round(statistics.median(v), 1) for k, v in times.items()}, "auto →", picked, flush=True)
    return rows


def ratios(rows: list[dict]) -> list[dict]:
    """Per dim: loop/parallel, loop/chunked, auto/fastest-of-ours, parallel/mambapy."""
    out = []
    for dim in sorted({r["dim"] for r in rows}):
        t = {r["name"]: r["time_ms"] for r in rows if r["dim"] == dim}
        fastest = min(t[k] for k in ("sequential", "parallel", "chunked"))
        out.append(dict(dim=dim, states=dim * rows[0]["N"], loop_over_parallel=t["sequential"] / t["parallel"],
                        loop_over_chunked=t["sequential"] / t["chunked"], auto_over_fastest=t["auto"] / fastest,
                        parallel_over_mambapy=t["parallel"] / t["mambapy pscan"] if "mambapy pscan" in t else None))
    return out


def record(args) -> dict:
    # torch's default thread count (all cores) is what a reader gets; with one thread the loop's tiny ops
    # get cheaper and the chunked form only ties it at dim >= 256 (seen on the 2-core build machine).
    load_before = os.getloadavg()[0]
    rows = crossover(args.dims, L=args.length, N=args.state, batch=args.batch, rounds=args.repeats,
                     progress=not args.quiet)
    notes = (f"Selective scan forward, fp32, batch {args.batch}, N {args.state}, L {args.length}, no autograd, "
             f"{torch.get_num_threads()} torch thread(s). Each round times every form once in a rotating order; "
             f"time_ms is the median over rounds (times_ms lists them all). Load average {load_before:.1f} before "
             f"and {os.getloadavg()[0]:.1f} after the run: on a busy machine compare forms within a row, not across "
             "files. 'auto' is selective_scan(backend='auto'); 'picked' is the form it chose. 'mambapy pscan' is "
             "the mambapy package's Blelloch scan with the same Δ/A/B/C preparation around it.")
    return {"title": "CPU selective scan: sequential vs parallel vs chunked vs auto vs mambapy, against dim·N",
            "rows": rows, "notes": notes, "ratios": ratios(rows)}
