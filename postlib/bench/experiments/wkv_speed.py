"""WKV on CPU: the parallel form (chunked closed form, exact scan beyond fp64's range) vs the RNN loop."""
from __future__ import annotations

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


def record(args) -> dict:
    from ...recurrent.wkv import chunk_plan
    from ..measure import measure_functions
    rows = measure_functions(factories(args.batch, args.channels), args.lengths, repeats=args.repeats, warmup=1,
                             memory=not args.no_memory, batch=args.batch, d_model=args.channels,
                             dtype="float32", progress=not args.quiet)
    at = {(r["name"], r["length"]): r["time_ms"] for r in rows}
    speedups = {str(L): at[("wkv recurrent (loop)", L)] / at[("wkv parallel", L)] for L in args.lengths}
    w, u, k, _ = inputs(args.batch, max(args.lengths), args.channels)
    T, dtype = chunk_plan(w, u, k, torch.float32)
    top = str(max(args.lengths))
    return {"title": f"WKV forward on CPU, batch {args.batch}, {args.channels} channels, fp32",
            "rows": rows, "speedups": speedups, "target_speedup": TARGET_SPEEDUP,
            "meets_target": speedups[top] >= TARGET_SPEEDUP,
            "notes": (f"RWKV-4 initial decays (w = e^-5 ... e^3); parallel = chunked closed form with chunk {T} in "
                      f"{str(dtype).replace('torch.', '')}, chunk states carried by the associative scan. "
                      f"Loop = one token per step (the reference).")}
