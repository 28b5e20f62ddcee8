"""Ultra-long context, two small working demonstrations: chunking and retrieval.

**Chunking** (segment-level recurrence: Transformer-XL, RMT, and every recurrent mixer): a causal
linear-attention layer's whole past is its state ``(S, z)`` (Katharopoulos et al. 2020, Eq. 18–20),
so a sequence of any length can be processed segment by segment, carrying the state, in memory that
depends on the segment and not on the length. :func:`stream_linear_attention` does that and equals
the one-shot chunked form (``postlib.attention.linear.causal_chunked``, itself equal to the
prefix-sum reference ``causal_prefix_sum``) — ``tests/lab/test_outlook_long_context.py``. Resetting
the state at each segment (independent chunks, the naive way to fit a long text) is *not* equal:
:func:`stream_linear_attention` with ``carry=False`` shows by how much.

**Retrieval** (kNN attention over a memory, Memorizing Transformers, Wu et al. 2022): keep every
past key and value, and let each query attend to only its ``k`` best-matching keys.
:func:`topk_attention` searches the memory block by block with a running top-k, so a memory of
a million entries never needs a (queries × memory) score matrix; with ``k`` equal to the memory
size it is exact softmax attention (the test). The search here is exact (every score computed
once); a real system replaces it with an approximate index, which this demonstration leaves out.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from .._checks import check_positive_int, check_tensor


# ----------------------------------------------------------------------------- chunking
def random_segments(length: int, segment: int, *, heads: int = 2, dim: int = 32, seed: int = 0,
                    dtype=torch.float32, device="cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Features φ(q), φ(k) (elu+1 of Gaussians) and values v of a ``length``-token sequence, one
    ``(1, heads, ≤segment, dim)`` segment at a time, drawn from one seeded generator: the same
    sequence whatever ``segment`` is, and never held whole."""
    from ..attention.linear import apply_feature_map

    check_positive_int(length, "length")
    check_positive_int(segment, "segment")
    g = torch.Generator().manual_seed(seed)
    # Drawn in fixed pages of tokens: torch's normal sampler fills a tensor in blocks, so drawing per
    # segment would give other numbers for another segment length.
    page, buffer = 256, torch.empty(0, 3, heads, dim, dtype=torch.float64)
    for start in range(0, length, segment):
        n = min(segment, length - start)
        while buffer.shape[0] < n:
            buffer = torch.cat([buffer, torch.randn(page, 3, heads, dim, generator=g, dtype=torch.float64)])
        x, buffer = buffer[:n], buffer[n:]
        q, k, v = (x[:, i].permute(1, 0, 2)[None].to(dtype=dtype, device=device) for i in range(3))
        yield apply_feature_map(q), apply_feature_map(k), v


def stream_linear_attention(segments, *, carry: bool = True, chunk_size: int = 64, keep_outputs: bool = True):
    """Causal linear attention over an iterable of ``(φ(q), φ(k), v)`` segments.

    ``carry=True`` passes the state ``(S, z)`` from one segment to the next: equal to the one-shot
    ``causal_chunked`` on the concatenated sequence. ``carry=False`` restarts from a zero state at
    every segment (independent chunks). Returns ``(outputs or None, final state, tokens)``; with
    ``keep_outputs=False`` only the state survives a segment, so memory stays that of one segment.
    """
    from ..attention.linear import causal_chunked

    state, outs, tokens = None, [], 0
    for i, (pq, pk, v) in enumerate(segments):
        for name, t in (("phi_q", pq), ("phi_k", pk), ("v", v)):
            check_tensor(t, f"segment {i} {name}", 4, "(batch, heads, length, dim)")
        out, new_state = causal_chunked(pq, pk, v, chunk_size=chunk_size, state=state if carry else None)
        state = new_state
        tokens += pq.shape[2]
        if keep_outputs:
            outs.append(out)
        pq = pk = v = out = None     # let this segment go before the next one is drawn
    if tokens == 0:
        raise ValueError("segments must yield at least one segment")
    return (torch.cat(outs, dim=2) if keep_outputs else None), state, tokens


def streaming_peak_bytes(length: int, segment: int, *, heads: int = 2, dim: int = 32) -> int:
    """Measured peak bytes (``postlib.bench.peak_memory``) of streaming ``length`` tokens in segments."""
    from ..bench import peak_memory

    def run():
        with torch.no_grad():
            return stream_linear_attention(random_segments(length, segment, heads=heads, dim=dim),
                                           keep_outputs=False)[1]
    return peak_memory(run)


def one_shot_peak_bytes(length: int, *, heads: int = 2, dim: int = 32, chunk_size: int = 64) -> int:
    """Measured peak bytes of the same sequence as one call (inputs, outputs and the call, all at once)."""
    from ..bench import peak_memory

    def run():
        with torch.no_grad():
            return stream_linear_attention(random_segments(length, length, heads=heads, dim=dim),
                                           chunk_size=chunk_size)[0]
    return peak_memory(run)


def kv_cache_bytes(length: int, *, heads: int = 2, dim: int = 32, itemsize: int = 4) -> int:
    """What softmax attention must keep to continue after ``length`` tokens: every key and value."""
    return 2 * length * heads * dim * itemsize


def linear_state_bytes(*, heads: int = 2, dim: int = 32, itemsize: int = 4) -> int:
    """What linear attention keeps instead: S (dim × dim) and z (dim) per head, whatever the length."""
    return heads * (dim * dim + dim) * itemsize


# ----------------------------------------------------------------------------- retrieval
def topk_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, k: int, *, block: int = 4096,
                   scale: float | None = None) -> torch.Tensor:
    """Softmax attention of each query over only its ``k`` highest-scoring keys.

    q (n_q, D); keys (M, D); values (M, Dv). The memory is scanned in blocks of ``block`` keys
    keeping a running top-k per query, so nothing of size n_q × M is ever built. ``k >= M`` gives
    exact softmax attention. Returns (n_q, Dv).
    """
    check_tensor(q, "q", 2, "(n_queries, dim)")
    check_tensor(keys, "keys", 2, "(memory, dim)")
    check_tensor(values, "values", 2, "(memory, value_dim)")
    if keys.shape[1] != q.shape[1] or values.shape[0] != keys.shape[0] or keys.shape[0] == 0:
        raise ValueError(f"need q (n, D), keys (M, D), values (M, Dv) with M >= 1; got q {tuple(q.shape)}, "
                         f"keys {tuple(keys.shape)}, values {tuple(values.shape)}")
    check_positive_int(k, "k")
    check_positive_int(block, "block")
    scale = 1.0 / math.sqrt(q.shape[1]) if scale is None else float(scale)
    k = min(k, keys.shape[0])
    best_s = q.new_full((q.shape[0], 0), float("-inf"))
    best_i = torch.zeros(q.shape[0], 0, dtype=torch.long, device=q.device)
    for start in range(0, keys.shape[0], block):
        s = (q @ keys[start:start + block].T) * scale
        idx = torch.arange(start, start + s.shape[1], device=q.device).expand(q.shape[0], -1)
        cand_s, cand_i = torch.cat([best_s, s], 1), torch.cat([best_i, idx], 1)
        top = cand_s.topk(min(k, cand_s.shape[1]), dim=1)
        best_s, best_i = top.values, cand_i.gather(1, top.indices)
    weights = torch.softmax(best_s, dim=1)                       # (n_q, k)
    return torch.einsum("qk,qkv->qv", weights, values[best_i])


def recall_memory(n_memory: int, *, dim: int = 64, n_queries: int = 256, noise: float = 0.3, seed: int = 0,
                  dtype=torch.float32):
    """A memory of ``n_memory`` (unit key, unit value) pairs and queries that are noisy copies of
    stored keys. Returns ``(queries, keys, values, target_index)``."""
    check_positive_int(n_memory, "n_memory")
    check_positive_int(n_queries, "n_queries")
    g = torch.Generator().manual_seed(seed)
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    keys = unit(torch.randn(n_memory, dim, generator=g, dtype=dtype))
    values = unit(torch.randn(n_memory, dim, generator=g, dtype=dtype))
    target = torch.randint(0, n_memory, (n_queries,), generator=g)
    queries = unit(keys[target] + noise / math.sqrt(dim) * torch.randn(n_queries, dim, generator=g, dtype=dtype))
    return queries, keys, values, target


def recall_accuracy(out: torch.Tensor, values: torch.Tensor, target: torch.Tensor, *, block: int = 65536) -> float:
    """Fraction of outputs whose nearest stored value (by dot product) is the target's."""
    best = torch.full((out.shape[0],), float("-inf"), dtype=out.dtype)
    arg = torch.zeros(out.shape[0], dtype=torch.long)
    for start in range(0, values.shape[0], block):
        s = out @ values[start:start + block].T
        m, i = s.max(dim=1)
        better = m > best
        best, arg = torch.where(better, m, best), torch.where(better, i + start, arg)
    return (arg == target).float().mean().item()


def retrieval_sweep(n_memory: int, ks, *, dim: int = 64, n_queries: int = 256, noise: float = 0.3,
                    scale: float = 16.0, seed: int = 0) -> dict:
    """Full softmax attention over the whole memory against top-k retrieval, for each k in ``ks``.

    Returns ``{"full": {"accuracy"}, "rows": [{"k", "accuracy", "rel_error", "value_reads"}], ...}``:
    accuracy = recall of the right value, rel_error = RMS distance to the full attention output
    relative to its RMS, value_reads = values read per query (k, against n_memory for full).
    """
    from ..attention.flash import flash_attention_torch
    from ..testing import rel_rms

    q, keys, values, target = recall_memory(n_memory, dim=dim, n_queries=n_queries, noise=noise, seed=seed)
    with torch.no_grad():   # exact attention over the whole memory, tiled (never n_queries × n_memory)
        full = flash_attention_torch(q[None, None], keys[None, None], values[None, None], scale=scale,
                                     block_size=4096)[0, 0]
        rows = []
        for k in ks:
            out = topk_attention(q, keys, values, int(k), scale=scale)
            rows.append({"k": int(k), "accuracy": recall_accuracy(out, values, target),
                         "rel_error": float(rel_rms(full, out)), "value_reads": min(int(k), n_memory)})
    return {"n_memory": n_memory, "dim": dim, "n_queries": n_queries, "noise": noise, "scale": scale,
            "full": {"accuracy": recall_accuracy(full, values, target), "value_reads": n_memory}, "rows": rows}
