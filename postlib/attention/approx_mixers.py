"""The efficient-attention family as registered mixers: linear, performer, linformer, reformer, lola.

All reuse ``MultiHeadMixer``'s projections; only ``attend`` (and, for the causal
ones, the recurrent ``step``) differ. ``tests/test_registry.py`` checks every one
(shape, step ≡ forward, causality, error messages).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ..registry import itemsizes, register_mixer
from .linear import (CAUSAL_BACKENDS, FEATURE_MAPS, apply_feature_map, check_eps, linear_attention_features,
                     recurrent_step)
from .linformer import linformer_attention
from .lola import EVICTIONS, init_cache, lola_attention, lola_step
from .mixers import MultiHeadMixer
from .performer import CHUNK as PERFORMER_CHUNK
from .performer import (KERNELS, favor_causal_chunked, favor_logits, favor_step, gaussian_projection,
                        init_favor_state, performer_features)
from .reformer import lsh_attention


def _linear_attention_bytes(batch: int, heads: int, length: int, feature_dim: int, head_dim: int, dtype,
                            backend: str, on_cuda: bool, chunk_size: int = 64) -> tuple[int, int]:
    """(forward, forward + backward) bytes of causal ``linear_attention_features`` beyond its inputs.

    chunked (and Triton, whose backward runs the chunked form under autograd): a few masked
    (chunk × chunk) blocks and states at a time, forward; every chunk's block, backward.
    torch (prefix sums): one (feature_dim × head_dim) state per token. recurrent: that state per
    token too, but only backward (autograd keeps each step's state).
    """
    s = itemsizes(dtype)[0]
    bh = batch * heads
    state = bh * feature_dim * (head_dim + 1) * s
    outputs = 3 * bh * length * head_dim * s                   # per-chunk outputs, their concatenation, the division
    if backend == "auto":
        backend = "triton" if on_cuda else "chunked"
    if backend in ("chunked", "triton"):
        c = min(chunk_size, length)
        chunks = -(-length // c)
        forward = 4 * bh * c * c * s + 4 * state + outputs
        backward = 3 * bh * length * c * s + 4 * chunks * state + 3 * outputs
    elif backend == "torch":
        prefix = bh * length * feature_dim * (head_dim + 1) * s
        forward, backward = 2 * prefix + outputs, 5 * prefix + 3 * outputs
    else:                                                      # recurrent
        forward, backward = 4 * state + outputs, 3 * length * state + 3 * outputs
    return forward, backward


class _RecurrentStateMixin:
    """Linear-attention state (S, z) per head: constant size, whatever the context length."""

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.qkv.weight.device
        dtype = dtype or self.qkv.weight.dtype
        D = self.feature_dim
        return (torch.zeros(batch_size, self.n_heads, D, self.head_dim, device=device, dtype=dtype),
                torch.zeros(batch_size, self.n_heads, D, device=device, dtype=dtype))

    def _step(self, x_t, state):
        q, k, v = self.split_heads(x_t[:, None])                     # (B, H, 1, Dh)
        pq, pk = self.features(q, k)
        y, state = recurrent_step(pq[:, :, 0], pk[:, :, 0], v[:, :, 0], state, self.eps)
        return self.merge_heads(y[:, :, None])[:, 0], state


@register_mixer("linear", family="attention", causal=True,
                summary="Linear attention (Katharopoulos et al. 2020): φ(q)ᵀΣφ(k)vᵀ with φ = elu+1; an RNN at decode time.")
class LinearAttentionMixer(_RecurrentStateMixin, MultiHeadMixer):
    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, feature_map: str = "elu+1", backend: str = "auto",
                 eps: float = 1e-6):
        super().__init__(d_model, n_heads)
        self.feature_map = check_choice(feature_map, "feature_map", FEATURE_MAPS)
        self.backend = check_choice(backend, "backend", CAUSAL_BACKENDS)
        self.eps = check_eps(eps, feature_map)
        self.feature_dim = self.head_dim

    def features(self, q, k):
        return apply_feature_map(q, self.feature_map), apply_feature_map(k, self.feature_map)

    def attend(self, q, k, v):
        pq, pk = self.features(q, k)
        return linear_attention_features(pq, pk, v, causal=True, backend=self.backend, eps=self.eps)

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """Linear in length: the projections, φ(q) and φ(k), and the backend's blocks or states (never L × L)."""
        s = itemsizes(dtype)[0]
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        feats = batch * self.n_heads * length * self.feature_dim * s
        core_f, core_fb = _linear_attention_bytes(batch, self.n_heads, length, self.feature_dim, self.head_dim, dtype,
                                                  self.backend, self.qkv.weight.is_cuda)
        return self._estimate(mode, dtype, proj_f + 3 * feats + core_f, proj_fb + 6 * feats + core_fb)


@register_mixer("performer", family="attention", causal=True,
                summary="Performer (Choromanski et al. 2021): FAVOR+ positive orthogonal random features for softmax.")
class PerformerMixer(MultiHeadMixer):
    """Causal FAVOR+. The projection ω is a buffer (not trained); ``redraw_features`` draws a fresh one
    (the paper redraws periodically during training). Positive features run the stabilised forms of
    ``postlib.attention.performer`` (state (S, z, c) rescaled by a running per-feature key maximum, so
    large inputs never underflow); trig features the plain linear-attention recurrence."""

    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, num_features: int | None = None, kernel: str = "positive",
                 orthogonal: bool = True, seed: int = 0, eps: float = 1e-6, chunk_size: int = PERFORMER_CHUNK):
        super().__init__(d_model, n_heads)
        # None: m = d·ln d features, the paper's Θ(d log d) rule, at least 16. An explicit value must be >= 1.
        if num_features is None:
            num_features = max(16, round(self.head_dim * math.log(max(self.head_dim, 2))))
        self.num_features = m = check_positive_int(num_features, "num_features")
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        self.orthogonal, self.eps = bool(orthogonal), check_eps(eps)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.feature_dim = m if kernel == "positive" else 2 * m
        self.register_buffer("projection", gaussian_projection(m, self.head_dim, self.orthogonal, seed,
                                                               dtype=torch.float32))

    @torch.no_grad()
    def redraw_features(self, seed: int) -> None:
        self.projection.copy_(gaussian_projection(self.num_features, self.head_dim, self.orthogonal, seed,
                                                  dtype=self.projection.dtype, device=self.projection.device))

    def attend(self, q, k, v):
        w = self.projection.to(q.dtype)
        if self.kernel == "trig":
            pq, pk = performer_features(q, k, w, "trig")
            return linear_attention_features(pq, pk, v, causal=True, eps=0.0)
        return favor_causal_chunked(favor_logits(q, w), favor_logits(k, w), v, self.eps, self.chunk_size)[0]

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.qkv.weight.device
        dtype = dtype or self.qkv.weight.dtype
        if self.kernel == "trig":
            return (torch.zeros(batch_size, self.n_heads, self.feature_dim, self.head_dim, device=device, dtype=dtype),
                    torch.zeros(batch_size, self.n_heads, self.feature_dim, device=device, dtype=dtype))
        return init_favor_state(batch_size, self.n_heads, self.num_features, self.head_dim, device, dtype)

    def _step(self, x_t, state):
        q, k, v = self.split_heads(x_t[:, None])                     # (B, H, 1, Dh)
        w = self.projection.to(q.dtype)
        if self.kernel == "trig":
            pq, pk = performer_features(q, k, w, "trig")
            y, state = recurrent_step(pq[:, :, 0], pk[:, :, 0], v[:, :, 0], state, 0.0)
        else:
            y, state = favor_step(favor_logits(q, w)[:, :, 0], favor_logits(k, w)[:, :, 0], v[:, :, 0], state,
                                  self.eps)
        return self.merge_heads(y[:, :, None])[:, 0], state

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """Linear in length: m logits per token for q and for k, then per chunk of C tokens the factors
        (C × m), the (C × C) weights and the (m × head_dim) state; backward keeps every chunk's (a split
        chunk keeps less). Trig features: chunked linear attention on 2m features."""
        s = itemsizes(dtype)[0]
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        bh, bhl, m = batch * self.n_heads, batch * self.n_heads * length, self.feature_dim
        feats_f = (6 * m + 4 * self.head_dim) * bhl * s
        feats_fb = (10 * m + 6 * self.head_dim) * bhl * s
        if self.kernel == "trig":
            core_f, core_fb = _linear_attention_bytes(batch, self.n_heads, length, m, self.head_dim, dtype,
                                                      "auto", self.qkv.weight.is_cuda)
        else:
            c = min(self.chunk_size, length)
            chunks = -(-length // c)
            weights, factors = bh * c * c * s, bh * c * m * s
            state = bh * m * (self.head_dim + 2) * s
            outputs = 3 * bhl * self.head_dim * s
            core_f = 4 * weights + 8 * factors + 4 * state + outputs
            core_fb = chunks * (4 * weights + 10 * factors + 4 * state) + 3 * outputs
        return self._estimate(mode, dtype, proj_f + feats_f + core_f, proj_fb + feats_fb + core_fb)


@register_mixer("linformer", family="attention", causal=False,
                summary="Linformer (Wang et al. 2020): keys and values projected to rank k along the length axis.")
class LinformerMixer(MultiHeadMixer):
    """Non-causal: every row of E·K mixes all positions. E and F (k × max_length) are learned, one pair
    shared across heads (the paper's "headwise sharing"); a shorter input uses the first L columns."""

    causal = False

    def __init__(self, d_model: int, n_heads: int = 4, rank: int = 32, max_length: int = 512,
                 share_kv: bool = False):
        super().__init__(d_model, n_heads)
        self.rank = check_positive_int(rank, "rank")
        self.max_length = check_positive_int(max_length, "max_length")
        self.E = nn.Parameter(torch.randn(rank, max_length) / math.sqrt(rank))
        self.F = self.E if share_kv else nn.Parameter(torch.randn(rank, max_length) / math.sqrt(rank))

    def attend(self, q, k, v):
        L = k.shape[2]
        if L > self.max_length:
            raise ValueError(f"x has length {L} > max_length {self.max_length}: the projections E, F have "
                             f"shape (rank, max_length); build the mixer with a larger max_length")
        return linformer_attention(q, k, v, self.E[:, :L], self.F[:, :L])

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """(length × rank) scores per head instead of (length × length): the softmax's input and output
        (plus an fp32 copy for half precision); backward, their gradients too."""
        s, w = itemsizes(dtype)
        copy = s if s < w else 0
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        scores = batch * self.n_heads * length * self.rank
        projected = 4 * batch * self.n_heads * self.rank * self.head_dim * w
        return self._estimate(mode, dtype, proj_f + scores * (2 * w + copy) + projected,
                              proj_fb + scores * (4 * w + 2 * copy) + 3 * projected)


@register_mixer("reformer", family="attention", causal=False,
                summary="Reformer (Kitaev et al. 2020): shared-QK LSH attention over sorted, chunked buckets.")
class ReformerMixer(MultiHeadMixer):
    """Shared-QK LSH attention. Registered non-causal: even with the causal mask, *which* keys share a
    query's chunk depends on how later tokens hash, so a future token can change a past output.
    Rehashes with a new seed on every training forward (as the paper does); fixed seed in eval."""

    causal = False

    def __init__(self, d_model: int, n_heads: int = 4, n_buckets: int = 8, n_hashes: int = 2,
                 chunk_size: int = 16, causal_mask: bool = False, seed: int = 0, dedup: bool = True):
        super().__init__(d_model, n_heads)
        self.n_buckets, self.n_hashes = n_buckets, check_positive_int(n_hashes, "n_hashes")
        self.dedup = bool(dedup)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.causal_mask, self.seed, self._calls = bool(causal_mask), seed, 0
        # Shared QK: replace the fused (q, k, v) projection by (qk, v).
        self.qkv = nn.Linear(d_model, 2 * d_model)

    def split_heads(self, x):
        B, L, _ = x.shape
        qk, v = self.qkv(x).view(B, L, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qk, v

    def _forward(self, x):
        qk, v = self.split_heads(x)
        seed = self.seed
        if self.training:
            self._calls += 1
            seed += self._calls
        out = lsh_attention(qk, v, self.n_buckets, self.n_hashes, self.chunk_size, causal=self.causal_mask, seed=seed,
                            dedup=self.dedup)
        return self.merge_heads(out)

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """Each of the n_hashes rounds sorts the (padded) sequence and scores every query against its chunk
        and the one before: (2·chunk) scores per query and round, never length × length. Plus the sorted,
        gathered and look-one-back copies of q and v, and the int64 sort keys and permutations; with several
        rounds and ``dedup``, the duplicate counts (int64) and one round's chunk comparisons (bool) per score."""
        s, w = itemsizes(dtype)
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        padded = -(-length // self.chunk_size) * self.chunk_size
        slots = batch * self.n_heads * self.n_hashes * padded               # one per (round, position)
        scores = slots * 2 * self.chunk_size
        vectors = slots * self.head_dim * s
        hashing = batch * self.n_heads * self.n_hashes * length * (3 * self.n_buckets // 2 * s + 8)
        index = 10 * slots * 8
        if self.dedup and self.n_hashes > 1:
            index += scores * (3 * 8 + 2 * self.n_hashes) + slots * self.n_hashes * 3 * 8
        return self._estimate(mode, dtype, proj_f + scores * (4 * w + 2) + 8 * vectors + index + hashing,
                              proj_fb + scores * (8 * w + 3) + 16 * vectors + index + hashing)


@register_mixer("lola", family="attention", causal=True,
                summary="LoLA-style hybrid (McDermott et al. 2025): linear attention + sliding window + sparse cache "
                        "of the worst-recalled pairs.")
class LolaMixer(MultiHeadMixer):
    """Causal; fixed memory per head: ``window + sparse`` exact (k, v) slots and a d×d linear state."""

    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, window: int = 4, sparse: int = 4, eps: float = 1e-6,
                 evict: str = "recall"):
        super().__init__(d_model, n_heads)
        self.window = check_positive_int(window, "window")
        self.sparse = check_positive_int(sparse, "sparse", minimum=0)
        self.eps = check_eps(eps)
        self.evict = check_choice(evict, "evict", EVICTIONS)

    def attend(self, q, k, v):
        return lola_attention(q, k, v, self.window, self.sparse, self.eps, self.evict)

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """A loop over tokens with a cache of window + sparse slots and a (head_dim × head_dim) state: the
        forward holds one step's temporaries; the backward keeps every step's cache copies and state."""
        s = itemsizes(dtype)[0]
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        bh, slots, d = batch * self.n_heads, self.window + self.sparse + 1, self.head_dim
        step = bh * (4 * slots * d + 2 * d * d + 16 * slots + 8 * d) * s
        outputs = 2 * bh * length * d * s
        return self._estimate(mode, dtype, proj_f + 3 * step + outputs, proj_fb + (length + 2) * step + outputs)

    def init_state(self, batch_size, device=None, dtype=None):
        return init_cache(batch_size, self.n_heads, self.window + self.sparse, self.head_dim,
                          device or self.qkv.weight.device, dtype or self.qkv.weight.dtype)

    def _step(self, x_t, state):
        q, k, v = self.split_heads(x_t[:, None])
        y, state = lola_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], state, self.window, self.eps, self.evict)
        return self.merge_heads(y[:, :, None])[:, 0], state
