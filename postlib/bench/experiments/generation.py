"""The cost of generating one token after a context of n tokens, three ways.

* ``linear (recurrent)``: one ``step`` of the linear-attention RNN — O(1) in n;
* ``softmax (KV cache)``: one ``step`` of softmax attention over the cached keys — O(n);
* ``softmax (recompute)``: re-run the whole prefix through the layer (what generation
  without a cache does, and what the Linear Transformer paper compares against) — O(n²).

All three use the same layer width; the recompute uses SDPA causal. The speed-ups at
the longest context are saved with the record; the kernel-attention chapter reads them.

    python -m postlib.bench generation            # records postlib/bench/results/cpu_generation.json
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..measure import measure_functions
from ._args import int_list

SUMMARY = "time to generate one token vs context length: linear-attention RNN step, softmax KV cache, recompute"
RESULT = "cpu_generation.json"
THREADS = 1          # one thread: steadier medians on a CPU shared with other jobs
GENERATION_NAMES = ("linear (recurrent)", "softmax (KV cache)", "softmax (recompute)")


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[256, 512, 1024, 2048, 4096, 8192],
                        help="context lengths n")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)


def _randn(*shape, device="cpu"):
    # Drawn on the CPU with a fixed seed (the same numbers on every device), then moved.
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(device)


def generation_factories(d_model: int = 256, n_heads: int = 4, device="cpu") -> dict:
    """{name: context length n -> thunk producing one output token}, one attention layer, batch 1, fp32,
    on ``device``."""
    from ...attention.linear import apply_feature_map
    from ...registry import build_mixer

    torch.manual_seed(0)
    lin = build_mixer("linear", d_model, n_heads=n_heads).to(device).eval()
    soft = build_mixer("softmax", d_model, n_heads=n_heads).to(device).eval()
    Dh = d_model // n_heads
    x_t = _randn(1, d_model, device=device)

    def recurrent(n):
        # The state after n tokens has the same size for every n; its values do not change the cost.
        state = (apply_feature_map(_randn(1, n_heads, Dh, Dh, device=device)),
                 apply_feature_map(_randn(1, n_heads, Dh, device=device)))

        @torch.no_grad()
        def run():
            return lin.step(x_t, state)
        return run

    def kv_cache(n):
        state = {"k": _randn(1, n_heads, n, Dh, device=device), "v": _randn(1, n_heads, n, Dh, device=device)}

        @torch.no_grad()
        def run():
            return soft.step(x_t, state)
        return run

    def recompute(n):
        x = _randn(1, n + 1, d_model, device=device)

        @torch.no_grad()
        def run():
            q, k, v = soft.split_heads(x)
            return soft.merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))[:, -1]
        return run

    return dict(zip(GENERATION_NAMES, (recurrent, kv_cache, recompute)))


def speedups(rows: list[dict], length: int) -> dict:
    """Per-token time of each generation method divided by the recurrent one's, at context ``length``."""
    at = {r["name"]: r["time_ms"] for r in rows if r["length"] == length and r.get("status", "ok") == "ok"}
    base = at.get(GENERATION_NAMES[0])
    if not base:
        raise ValueError(f"rows have no '{GENERATION_NAMES[0]}' measurement at length {length}")
    return {name: t / base for name, t in at.items()}


def record(args) -> dict:
    rows = measure_functions(generation_factories(args.d_model, args.heads), args.lengths, repeats=args.repeats,
                             warmup=args.warmup, memory=False, batch=1, d_model=args.d_model, dtype="torch.float32",
                             progress=not args.quiet)
    top = max(args.lengths)
    dh = args.d_model // args.heads
    notes = (f"One attention layer, d_model {args.d_model}, {args.heads} heads, batch 1, fp32, no grad. Recurrent = "
             f"linear attention step (state {args.heads}x{dh}x{dh}); KV cache = softmax step over n cached keys; "
             "recompute = the whole (n+1)-token prefix through the layer with SDPA causal. "
             f"{torch.get_num_threads()} torch thread(s). Medians of {args.repeats} runs, measured side by side on "
             "a shared CPU.")
    return {"title": "Cost of generating one token vs context length (CPU)", "rows": rows, "notes": notes,
            "speedup_at": top, "speedups": speedups(rows, top)}
