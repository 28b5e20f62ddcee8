"""WKV on CPU: the parallel form (chunked closed form; the exact scan beyond fp64's range) vs the RNN loop."""
from __future__ import annotations

import statistics

import torch

from ._args import int_list

SUMMARY = "WKV on CPU: parallel (chunked) form vs the RNN loop at (batch, length, channels) fp32; time and peak memory"
RESULT = "cpu_wkv.json"
TARGET_SPEEDUP = 10.0


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[256, 1024, 4096])
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")


def inputs(batch: int, length: int, channels: int, seed: int = 0):
    """RWKV-4's initial decays (w from e^-5 to e^3) and the paper's bonus; standard normal keys and values."""
    from ...recurrent.rwkv import rwkv4_bonus_init, rwkv4_decay_init
    g = torch.Generator().manual_seed(seed)
    w, u = torch.exp(rwkv4_decay_init(channels)), rwkv4_bonus_init(channels)
    k = torch.randn(batch, length, channels, generator=g)
    v = torch.randn(batch, length, channels, generator=g)
    return w, u, k, v


def factories(batch: int, channels: int, device="cpu") -> dict:
    """{name: length → thunk}: one WKV forward by the loop and by the parallel form, inputs on ``device``."""
    from ...recurrent.wkv import wkv

    def make(backend):
        def factory(length):
            w, u, k, v = (x.to(device) for x in inputs(batch, length, channels))

            @torch.no_grad()
            def run():
                return wkv(w, u, k, v, backend=backend)
            return run
        return factory
    return {"wkv recurrent (loop)": make("recurrent"), "wkv parallel": make("parallel")}


def paired_speedups(forms: dict, lengths, repeats: int) -> dict[str, float]:
    """{length: loop time / parallel time}, the median over ``repeats`` pairs timed back to back.

    A shared VM's speed drifts (by up to 2x over minutes on the recording machine); timing the two
    forms minutes apart would compare two machines. Each pair sees one machine state; the parallel
    side of a pair is the median of 3 calls, as it is short."""
    from ..core import time_fn
    loop_factory, parallel_factory = forms["wkv recurrent (loop)"], forms["wkv parallel"]
    speedups = {}
    for L in lengths:
        loop, parallel = loop_factory(L), parallel_factory(L)
        loop(), parallel()                                           # warm-up
        ratios = [time_fn(loop, repeats=1, warmup=0) / time_fn(parallel, repeats=3, warmup=0)
                  for _ in range(repeats)]
        speedups[str(L)] = statistics.median(ratios)
    return speedups


def record(args) -> dict:
    from ...recurrent.wkv import chunk_plan
    from ..measure import measure_functions
    forms = factories(args.batch, args.channels)
    rows = measure_functions(forms, args.lengths, repeats=args.repeats, warmup=1,
                             memory=not args.no_memory, batch=args.batch, d_model=args.channels,
                             dtype="float32", progress=not args.quiet)
    speedups = paired_speedups(forms, args.lengths, args.repeats)
    w, u, k, _ = inputs(args.batch, max(args.lengths), args.channels)
    T, dtype = chunk_plan(w, u, k, torch.float32)
    top = str(max(args.lengths))
    return {"title": f"WKV forward on CPU, batch {args.batch}, {args.channels} channels, fp32",
            "rows": rows, "speedups": speedups, "target_speedup": TARGET_SPEEDUP,
            "meets_target": speedups[top] >= TARGET_SPEEDUP,
            "notes": (f"RWKV-4 initial decays (w = e^-5 ... e^3); parallel = chunked closed form with chunk {T} in "
                      f"{str(dtype).replace('torch.', '')}, the state carried from chunk to chunk (one merge per chunk). "
                      f"Loop = one token per step (the reference). Speed-ups: median over {args.repeats} "
                      f"back-to-back pairs (loop, then parallel), so both sides see the same machine state; "
                      f"rows: each form's median time over its own run.")}
