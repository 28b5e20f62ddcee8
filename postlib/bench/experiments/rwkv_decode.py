"""Decoding one token with RWKV's constant state vs softmax attention's KV cache, as the context grows."""
from __future__ import annotations

import torch

from ._args import int_list

SUMMARY = "decode cost per token vs context length: RWKV time-mix step (constant state) vs softmax KV cache"
RESULT = "cpu_rwkv_decode.json"
NAMES = ("rwkv (constant state)", "softmax (KV cache)")


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[256, 512, 1024, 2048, 4096, 8192],
                        help="context lengths (tokens already seen)")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4, help="softmax attention heads")
    parser.add_argument("--repeats", type=int, default=21)


def factories(d_model: int = 256, heads: int = 4) -> dict:
    """{name: context n → thunk producing one token}: batch 1, fp32, one layer's token mixer each.

    RWKV: the state after n real tokens, built by the parallel pass (``prefill``), then one ``step``.
    Softmax: a KV cache of n keys and values, then one ``step`` (which appends to the cache).
    """
    from ...registry import build_mixer
    torch.manual_seed(0)
    rwkv = build_mixer("rwkv", d_model, channel_mix=False).eval()
    soft = build_mixer("softmax", d_model, n_heads=heads).eval()
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(1, d_model, generator=g)

    def rwkv_step(n):
        with torch.no_grad():
            _, state = rwkv.prefill(torch.randn(1, n, d_model, generator=g))

        @torch.no_grad()
        def run():
            return rwkv.step(x_t, state)
        return run

    def kv_step(n):
        hd = d_model // heads
        state = {"k": torch.randn(1, heads, n, hd, generator=g), "v": torch.randn(1, heads, n, hd, generator=g)}

        @torch.no_grad()
        def run():
            return soft.step(x_t, state)
        return run

    return dict(zip(NAMES, (rwkv_step, kv_step))), rwkv, soft


def state_bytes(name: str, n: int, d_model: int, rwkv) -> int:
    """Bytes of the decoding state after n tokens: RWKV's is constant, the KV cache holds 2·n·d floats."""
    return rwkv.state_bytes(1) if name == NAMES[0] else 2 * n * d_model * 4


def record(args) -> dict:
    from ..measure import fit_exponent, measure_functions
    facts, rwkv, _ = factories(args.d_model, args.heads)
    rows = measure_functions(facts, args.lengths, repeats=args.repeats, warmup=3, memory=True, batch=1,
                             d_model=args.d_model, dtype="float32", progress=not args.quiet)
    for r in rows:
        r["state_bytes"] = state_bytes(r["name"], r["length"], args.d_model, rwkv)
    fits = {name: {"time_exponent": fit_exponent([r["length"] for r in rows if r["name"] == name],
                                                 [r["time_ms"] for r in rows if r["name"] == name]),
                   "state_exponent": fit_exponent([r["length"] for r in rows if r["name"] == name],
                                                  [r["state_bytes"] for r in rows if r["name"] == name])}
            for name in NAMES}
    by = {(r["name"], r["length"]): r for r in rows}
    lo, hi = min(args.lengths), max(args.lengths)
    ratios = {name: by[(name, hi)]["time_ms"] / by[(name, lo)]["time_ms"] for name in NAMES}
    return {"title": f"Decoding one token after n tokens of context (d_model={args.d_model}, batch 1, fp32)",
            "rows": rows, "fits": fits, "time_ratio_longest_to_shortest": ratios,
            "notes": ("RWKV: time mix alone (channel_mix=False), state built by the parallel prefill; softmax: "
                      f"{args.heads} heads, KV cache of n random keys/values, one step appends to it. "
                      "peak_mem_bytes = allocations during one step (the cache append copies the cache); "
                      "state_bytes = what is kept between steps.")}
