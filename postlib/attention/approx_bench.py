"""Measurements behind the kernel-attention chapter: time vs length, and generation cost per token.

* ``scaling_factories`` — forward time of causal linear attention (chunked) and
  of softmax attention (PyTorch SDPA, the fastest softmax available on CPU, so the
  comparison is against the *strongest* baseline), for ``postlib.bench.measure_functions``.
* ``generation_factories`` — the cost of producing *one* new token given a
  context of n tokens, three ways:
    - ``linear (recurrent)``: one ``step`` of the linear-attention RNN — O(1) in n;
    - ``softmax (KV cache)``: one ``step`` of softmax attention over the cached keys — O(n);
    - ``softmax (recompute)``: re-run the whole prefix through the layer (what generation
      without a cache does, and what the Linear Transformer paper compares against) — O(n²).
  All three use the same layer width; the recompute uses SDPA causal.

``python -m postlib.attention.approx_bench`` records both to
``postlib/bench/results/cpu_linear_attention.json`` and ``cpu_generation.json``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .linear import apply_feature_map, linear_attention_features

GENERATION_NAMES = ("linear (recurrent)", "softmax (KV cache)", "softmax (recompute)")


def _randn(*shape):
    g = torch.Generator().manual_seed(0)
    return torch.randn(*shape, generator=g)


def scaling_factories(heads: int = 4, head_dim: int = 64, chunk_size: int = 128) -> dict:
    """{name: length -> thunk} for one causal attention forward on (1, heads, L, head_dim) fp32 tensors."""

    def linear(L):
        q, k, v = (_randn(1, heads, L, head_dim) for _ in range(3))

        @torch.no_grad()
        def run():
            return linear_attention_features(apply_feature_map(q), apply_feature_map(k), v, causal=True,
                                             backend="chunked", chunk_size=chunk_size)
        return run

    def softmax(L):
        q, k, v = (_randn(1, heads, L, head_dim) for _ in range(3))

        @torch.no_grad()
        def run():
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return run

    return {"linear attention (causal, chunked)": linear, "softmax attention (SDPA causal)": softmax}


def generation_factories(d_model: int = 256, n_heads: int = 4) -> dict:
    """{name: context length n -> thunk producing one output token}, one attention layer, batch 1, fp32."""
    from ..registry import build_mixer
    torch.manual_seed(0)
    lin = build_mixer("linear", d_model, n_heads=n_heads).eval()
    soft = build_mixer("softmax", d_model, n_heads=n_heads).eval()
    Dh = d_model // n_heads
    x_t = _randn(1, d_model)

    def recurrent(n):
        # The state after n tokens has the same size for every n; its values do not change the cost.
        state = (apply_feature_map(_randn(1, n_heads, Dh, Dh)), apply_feature_map(_randn(1, n_heads, Dh)))

        @torch.no_grad()
        def run():
            return lin.step(x_t, state)
        return run

    def kv_cache(n):
        state = {"k": _randn(1, n_heads, n, Dh), "v": _randn(1, n_heads, n, Dh)}

        @torch.no_grad()
        def run():
            return soft.step(x_t, state)
        return run

    def recompute(n):
        x = _randn(1, n + 1, d_model)

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


def record(out_dir=None, quick: bool = False) -> list:
    """Measure both benchmarks side by side and save them (with provenance) in ``RESULTS_DIR``."""
    from ..bench import RESULTS_DIR, fit_exponent, measure_functions, save_results
    out_dir = out_dir or RESULTS_DIR
    paths = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # one thread: steadier medians on a CPU shared with other jobs
    try:
        paths = _record(out_dir, quick, fit_exponent, measure_functions, save_results)
    finally:
        torch.set_num_threads(threads)
    return paths


def _record(out_dir, quick, fit_exponent, measure_functions, save_results):
    paths = []
    lin_lengths = [1024, 2048, 4096, 8192, 16384, 32768]
    soft_lengths = [1024, 2048, 4096, 8192, 16384]
    if quick:
        lin_lengths, soft_lengths = lin_lengths[:3], soft_lengths[:3]
    facts = scaling_factories()
    (lin_name, lin_f), (soft_name, soft_f) = facts.items()
    rows = measure_functions({lin_name: lin_f}, lin_lengths, repeats=5, warmup=1, memory=False, batch=1,
                             d_model=4 * 64, dtype="torch.float32", progress=False)
    rows += measure_functions({soft_name: soft_f}, soft_lengths, repeats=3, warmup=1, memory=False, batch=1,
                              d_model=4 * 64, dtype="torch.float32", progress=False)
    exps = {name: fit_exponent([r["length"] for r in rows if r["name"] == name],
                               [r["time_ms"] for r in rows if r["name"] == name]) for name in facts}
    paths.append(save_results(rows, out_dir / "cpu_linear_attention.json",
                              title="Causal attention forward time vs length (CPU)",
                              notes="1 batch, 4 heads, head_dim 64, fp32, no grad. Linear: elu+1 features, chunked "
                                    "(chunk 128). Softmax: torch SDPA causal (memory-efficient CPU kernel). Single thread. Medians of "
                                    "5 (linear) / 3 (softmax) runs on a CPU shared with other jobs: expect noise.",
                              extra={"exponents": exps}))
    gen_lengths = [256, 512, 1024, 2048, 4096, 8192] if not quick else [256, 512, 1024]
    grows = measure_functions(generation_factories(), gen_lengths, repeats=7, warmup=2, memory=False, batch=1,
                              d_model=256, dtype="torch.float32", progress=False)
    top = gen_lengths[-1]
    paths.append(save_results(grows, out_dir / "cpu_generation.json",
                              title="Cost of generating one token vs context length (CPU)",
                              notes="One attention layer, d_model 256, 4 heads, batch 1, fp32, no grad. Recurrent = "
                                    "linear attention step (state 4x64x64); KV cache = softmax step over n cached keys; "
                                    "recompute = the whole (n+1)-token prefix through the layer with SDPA causal. "
                                    "Single thread. Medians of 7 runs, measured side by side on a shared CPU.",
                              extra={"speedup_at": top, "speedups": speedups(grows, top)}))
    return paths


if __name__ == "__main__":  # pragma: no cover
    import sys
    for p in record(quick="--quick" in sys.argv):
        print(p)
