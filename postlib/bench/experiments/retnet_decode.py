"""Decoding one token: RetNet's recurrent step (a fixed d_k × d_v state per head) against softmax attention with a
KV cache (keys and values of every past token), at context lengths 256 … 8k. Time per token, measured peak memory
of the step, and the bytes each keeps between tokens. The paper's claim to set beside it: at 7B parameters and 8k
context, 8.4× faster decoding and 70% less memory than a Transformer with a KV cache (Sun et al. 2023)."""
from __future__ import annotations

import torch

from ...models import state_nbytes
from ._args import DTYPES, add_device_arguments, int_list

SUMMARY = "decode cost per token vs context: RetNet step (constant state) vs softmax KV cache"
RESULT = "cpu_retnet_decode.json"
RETNET, KV_CACHE = "RetNet (recurrent step)", "softmax (KV cache)"
state_bytes = state_nbytes  # bytes held between tokens; one definition, in postlib.models


def decode_states(context: int, d_model: int = 256, n_heads: int = 4, batch: int = 1,
                  dtype: torch.dtype = torch.float32, device="cpu", seed: int = 0):
    """The two layers and their states after ``context`` tokens: {name: (mixer, state)}.

    The states hold random values of the right shape: a step's cost depends on the shapes, not the values, and
    filling a KV cache of 8k tokens by stepping would take longer than the measurement.
    """
    from ...registry import build_mixer
    torch.manual_seed(seed)
    retnet = build_mixer("retnet", d_model, n_heads=n_heads).to(device=device, dtype=dtype).eval()
    soft = build_mixer("softmax", d_model, n_heads=n_heads).to(device=device, dtype=dtype).eval()
    r_state = retnet.init_state(batch, device=device, dtype=dtype)
    r_state = {"S": torch.randn_like(r_state["S"]), "n": context}
    head_dim = d_model // n_heads
    kv = {name: torch.randn(batch, n_heads, context, head_dim, device=device, dtype=dtype) for name in ("k", "v")}
    return {RETNET: (retnet, r_state), KV_CACHE: (soft, kv)}


def decode_factories(d_model: int = 256, n_heads: int = 4, batch: int = 1, dtype: torch.dtype = torch.float32,
                     device="cpu") -> dict:
    """{name: context -> thunk producing one token}: each thunk runs ``step`` once from a state of that context."""
    def make(name):
        def factory(context):
            mixer, state = decode_states(context, d_model, n_heads, batch, dtype, device)[name]
            x_t = torch.randn(batch, d_model, device=device, dtype=dtype)

            @torch.no_grad()
            def run():
                return mixer.step(x_t, state)
            return run
        return factory
    return {RETNET: make(RETNET), KV_CACHE: make(KV_CACHE)}


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[256, 512, 1024, 2048, 4096, 8192],
                        help="context lengths (tokens already seen)")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    add_device_arguments(parser, repeats=21)


def record(args) -> dict:
    from ..measure import fit_exponent, measure_functions
    dtype = DTYPES[args.dtype]
    rows = measure_functions(decode_factories(args.d_model, args.heads, args.batch, dtype, args.device),
                             args.lengths, repeats=args.repeats, warmup=args.warmup, device=args.device, memory=True,
                             batch=args.batch, d_model=args.d_model, dtype=args.dtype, progress=not args.quiet)
    for row in rows:
        _, state = decode_states(row["length"], args.d_model, args.heads, args.batch, dtype, "cpu")[row["name"]]
        row["state_bytes"] = state_nbytes(state)
    fits = {name: {"time": fit_exponent([r["length"] for r in rows if r["name"] == name],
                                        [r["time_ms"] for r in rows if r["name"] == name]),
                   "state": fit_exponent([r["length"] for r in rows if r["name"] == name],
                                         [r["state_bytes"] for r in rows if r["name"] == name])}
            for name in (RETNET, KV_CACHE)}
    top = max(args.lengths)
    at = {r["name"]: r for r in rows if r["length"] == top}
    ratios = {"context": top,
              "time_kv_over_retnet": at[KV_CACHE]["time_ms"] / at[RETNET]["time_ms"],
              "state_saving": 1 - at[RETNET]["state_bytes"] / at[KV_CACHE]["state_bytes"],
              "step_peak_saving": 1 - at[RETNET]["peak_mem_bytes"] / max(at[KV_CACHE]["peak_mem_bytes"], 1)}
    return {"title": f"Decoding one token after n tokens: RetNet step vs softmax KV cache (d_model {args.d_model}, "
                     f"{args.heads} heads, batch {args.batch}, {args.dtype})",
            "rows": rows, "fits": fits, "at_longest": ratios,
            "paper": {"speedup": 8.4, "memory_saving": 0.70, "scale": "7B parameters, 8k context, GPU"}}
