"""Retention's forms against length: the chunkwise form's time and added memory stay linear; the parallel form's
(QKᵀ ⊙ D)V does not. Targets (issue 9): chunkwise time exponent ≤ 1.15 from 1k to 32k, and under 256 MiB added
at L = 16384 where the decay matrix alone is 1 GiB per head in fp32."""
from __future__ import annotations

import torch

from ._args import DTYPES, add_device_arguments, int_list

SUMMARY = "retention forms vs length: chunkwise (linear time, O(L) memory) vs parallel (QKᵀ⊙D)V, CPU"
RESULT = "cpu_retention.json"
CHUNKWISE, PARALLEL = "retention (chunkwise)", "retention (parallel, (QKᵀ⊙D)V)"


def retention_factories(heads: int = 4, head_dim: int = 64, batch: int = 1, chunk_size: int = 64,
                        dtype: torch.dtype = torch.float32, device="cpu") -> dict:
    """{name: length -> thunk}: one retention call on random (batch, heads, L, head_dim) inputs, no grad."""
    from ...recurrent.retention import retention, retnet_gammas
    gamma = retnet_gammas(heads).to(device)

    def make(backend):
        def factory(L):
            g = torch.Generator().manual_seed(L)
            q, k, v = (torch.randn(batch, heads, L, head_dim, generator=g).mul(head_dim ** -0.25)
                       .to(device=device, dtype=dtype) for _ in range(3))

            @torch.no_grad()
            def run():
                return retention(q, k, v, gamma, backend=backend, chunk_size=chunk_size)
            return run
        return factory

    return {CHUNKWISE: make("chunkwise"), PARALLEL: make("parallel")}


def add_arguments(parser) -> None:
    parser.add_argument("--lengths", type=int_list, default=[1024, 2048, 4096, 8192, 16384, 32768],
                        help="chunkwise lengths")
    parser.add_argument("--parallel-lengths", type=int_list, default=[1024, 2048, 4096],
                        help="parallel-form lengths (it materialises heads × L × L)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=64)
    add_device_arguments(parser, repeats=5)


def record(args) -> dict:
    from ..measure import fit_exponent, measure_functions
    facts = retention_factories(args.heads, args.head_dim, args.batch, args.chunk_size, DTYPES[args.dtype],
                                args.device)
    common = dict(repeats=args.repeats, warmup=args.warmup, device=args.device, memory=True, batch=args.batch,
                  d_model=args.heads * args.head_dim, dtype=args.dtype, progress=not args.quiet)
    rows = measure_functions({CHUNKWISE: facts[CHUNKWISE]}, args.lengths, **common)
    rows += measure_functions({PARALLEL: facts[PARALLEL]}, args.parallel_lengths, **common)
    fits = {}
    for name in (CHUNKWISE, PARALLEL):
        ok = [r for r in rows if r["name"] == name and r["status"] == "ok"]
        if len({r["length"] for r in ok}) >= 2:
            fits[name] = {"time": fit_exponent([r["length"] for r in ok], [r["time_ms"] for r in ok]),
                          "memory": fit_exponent([r["length"] for r in ok], [r["peak_mem_bytes"] for r in ok])}
    item = torch.empty((), dtype=DTYPES[args.dtype]).element_size()
    return {"title": f"Retention forward vs length ({args.dtype}, batch {args.batch}, {args.heads} heads, "
                     f"head_dim {args.head_dim}, chunk {args.chunk_size})",
            "rows": rows, "fits": fits,
            "decay_matrix_bytes_per_head": {str(L): L * L * item for L in args.lengths},
            "targets": {"chunkwise_time_exponent_max": 1.15, "chunkwise_added_bytes_at_16384_max": 256 * 2**20}}
