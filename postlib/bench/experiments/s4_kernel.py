"""The S4 kernel two ways: L powers of the dense Ā against the Cauchy + Woodbury form.

One channel of HiPPO-LegS in its NPLR form (``postlib.ssm.s4.nplr_legs``), fp64, step Δ = 0.01:

* ``powers of Ā``        ``s4_kernel_naive``: L dense matrix–vector products in sequence, O(N²L);
* ``Cauchy + Woodbury``  ``s4_kernel``: the generating function at L roots of unity, a few vectorised
  (L × N) Cauchy sums and one inverse FFT, O(NL) (plus one matrix power for C̃ = C(I − Ā^L)).

Both are timed with ``postlib.bench.time_fn`` (median of ``--repeats``) at each length; the S4 chapter
reads this record (a live timing on a busy machine cannot back a sentence). Every length is first
checked: the two kernels must agree to 1e-9 (relative), so the record only times correct code.

    python -m postlib.bench s4-kernel       # records postlib/bench/results/cpu_s4_kernel.json
"""
from __future__ import annotations

import os

import torch

from ..._checks import check_positive_int
from ._args import int_list

SUMMARY = "S4 kernel on CPU: powers of the dense Ā (O(N²L)) vs Cauchy + Woodbury (O(NL)), one channel, fp64"
RESULT = "cpu_s4_kernel.json"
THREADS = 1          # one channel: a single thread is steadier on a shared CPU
NAIVE, CAUCHY = "powers of Ā", "Cauchy + Woodbury"


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[256, 512, 1024, 2048, 4096, 8192])
    parser.add_argument("--state", type=int, default=64, help="N, the state size")
    parser.add_argument("--dt", type=float, default=0.01, help="the step Δ")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per point (median)")


def kernel_factories(N: int = 64, dt: float = 0.01, device="cpu", seed: int = 0) -> dict:
    """``{name: length -> thunk}`` for ``postlib.bench.measure_functions``: the two ways to compute one channel's
    S4 kernel of HiPPO-LegS (N states, fp64, a random complex C drawn with ``seed``)."""
    from ...ssm.s4 import bilinear_dense, nplr_legs, s4_kernel, s4_kernel_naive

    check_positive_int(N, "N")
    Lam, P, B, _ = (torch.tensor(a, device=device) for a in nplr_legs(N))
    C = torch.randn(N, dtype=torch.complex128, generator=torch.Generator().manual_seed(seed)).to(device)
    Ad, Bd = bilinear_dense(Lam, P, B, dt)
    return {NAIVE: lambda L: (lambda: s4_kernel_naive(Ad, Bd, C, L)),
            CAUCHY: lambda L: (lambda: s4_kernel(Lam, P, B, C, dt, L))}


def speedups(rows: list[dict]) -> list[dict]:
    """Per length: {length, naive_ms, cauchy_ms, speedup = naive / Cauchy}."""
    t = {(r["name"], r["length"]): r["time_ms"] for r in rows if r.get("status", "ok") == "ok"}
    return [dict(length=L, naive_ms=t[NAIVE, L], cauchy_ms=t[CAUCHY, L], speedup=t[NAIVE, L] / t[CAUCHY, L])
            for L in sorted({L for _, L in t}) if (NAIVE, L) in t and (CAUCHY, L) in t]


def record(args) -> dict:
    from .. import measure_functions

    load_before = os.getloadavg()[0]
    factories = kernel_factories(args.state, args.dt)
    with torch.no_grad():
        for L in args.lengths:                 # time only correct code
            naive, fast = factories[NAIVE](L)(), factories[CAUCHY](L)()
            err = ((fast - naive).abs().max() / naive.abs().max()).item()
            if not err < 1e-9:
                raise AssertionError(f"the Cauchy kernel disagrees with the powers of Ā at L={L}: {err:.1e}")
        rows = measure_functions(factories, args.lengths, repeats=args.repeats, memory=False, d_model=args.state,
                                 dtype="float64", progress=not args.quiet)
    for r in rows:
        r["N"] = args.state
    notes = (f"One channel of HiPPO-LegS, N = {args.state}, Δ = {args.dt}, fp64, {torch.get_num_threads()} torch "
             f"thread(s), median of {args.repeats} calls. Load average {load_before:.1f} before and "
             f"{os.getloadavg()[0]:.1f} after the run.")
    return {"title": "S4 kernel: powers of Ā vs Cauchy + Woodbury", "rows": rows, "notes": notes,
            "speedups": speedups(rows)}
