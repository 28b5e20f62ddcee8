"""Causal linear attention against softmax attention: forward time as the sequence grows.

Linear attention in its chunked causal form (``postlib.attention.linear``) against
softmax attention through PyTorch's SDPA, the fastest softmax available on CPU, so
the comparison is against the *strongest* baseline. The fitted exponents (time ∝ L^p)
are saved with the record; the kernel-attention chapter reads them.

    python -m postlib.bench linear-attention      # records postlib/bench/results/cpu_linear_attention.json
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..measure import fit_exponent, measure_functions
from ._args import int_list

SUMMARY = "causal linear attention (chunked) vs softmax (SDPA): forward time against length, fitted exponents"
RESULT = "cpu_linear_attention.json"
THREADS = 1          # one thread: steadier medians on a CPU shared with other jobs


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384, 32768],
                        help="lengths for linear attention")
    parser.add_argument("--softmax-lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384],
                        help="lengths for softmax attention (one run at 32k takes seconds)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per length (linear)")
    parser.add_argument("--softmax-repeats", type=int, default=3, help="timed runs per length (softmax)")


def _randn(*shape, device="cpu"):
    # Drawn on the CPU with a fixed seed (the same numbers on every device), then moved.
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(device)


def scaling_factories(heads: int = 4, head_dim: int = 64, chunk_size: int = 128, device="cpu") -> dict:
    """{name: length -> thunk} for one causal attention forward on (1, heads, L, head_dim) fp32 tensors
    on ``device``."""
    from ...attention.linear import apply_feature_map, linear_attention_features

    def linear(L):
        q, k, v = (_randn(1, heads, L, head_dim, device=device) for _ in range(3))

        @torch.no_grad()
        def run():
            return linear_attention_features(apply_feature_map(q), apply_feature_map(k), v, causal=True,
                                             backend="chunked", chunk_size=chunk_size)
        return run

    def softmax(L):
        q, k, v = (_randn(1, heads, L, head_dim, device=device) for _ in range(3))

        @torch.no_grad()
        def run():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return run

    return {"linear attention (causal, chunked)": linear, "softmax attention (SDPA causal)": softmax}


def record(args) -> dict:
    facts = scaling_factories(args.heads, args.head_dim, args.chunk_size)
    (lin_name, lin_f), (soft_name, soft_f) = facts.items()
    common = dict(warmup=1, memory=False, batch=1, d_model=args.heads * args.head_dim, dtype="torch.float32",
                  progress=not args.quiet)
    rows = measure_functions({lin_name: lin_f}, args.lengths, repeats=args.repeats, **common)
    rows += measure_functions({soft_name: soft_f}, args.softmax_lengths, repeats=args.softmax_repeats, **common)
    exponents = {}
    for name in facts:                                 # a fit needs two lengths or more
        points = [(r["length"], r["time_ms"]) for r in rows if r["name"] == name and r["status"] == "ok"]
        if len({length for length, _ in points}) >= 2:
            exponents[name] = fit_exponent(*zip(*points))
    notes = (f"1 batch, {args.heads} heads, head_dim {args.head_dim}, fp32, no grad. Linear: elu+1 features, "
             f"chunked (chunk {args.chunk_size}). Softmax: torch SDPA causal (memory-efficient CPU kernel). "
             f"{torch.get_num_threads()} torch thread(s). Medians of {args.repeats} (linear) / "
             f"{args.softmax_repeats} (softmax) runs on a CPU shared with other jobs: expect noise.")
    return {"title": "Causal attention forward time vs length (CPU)", "rows": rows, "notes": notes,
            "exponents": exponents}
