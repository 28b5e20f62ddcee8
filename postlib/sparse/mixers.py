"""The sparse-attention mixers: Longformer (causal), BigBird (encoder), LongNet (causal dilated mixture).

Each is multi-head attention (``postlib.attention.mixers.MultiHeadMixer``: fused QKV
projection, heads, output projection) whose ``attend`` is a sparse form from this package.
The causal ones decode with a *bounded* cache, so memory per generated token stays flat
however long the context grows (``tests/sparse/test_mixers.py`` checks the cache size;
``tests/test_registry.py`` checks step ≡ forward for every causal mixer).
"""
from __future__ import annotations

import torch

from .._checks import check_choice, check_positive_int
from ..attention.mixers import MultiHeadMixer
from ..registry import register_mixer
from .attention import BACKENDS, CHUNK_BYTES, masked_attention, sparse_attention
from .longnet import dilated_attention, mix_branches, offset_table
from .masks import check_params, make_pattern


def _pattern_bytes(pattern, batch, heads, head_dim, tile, itemsize, backward: bool) -> int:
    """Upper bound on ``blocked_attention``'s working set for one call, from its chunk schedule.

    One unit = one (query tile × key tile) block of one chunk. While a chunk runs it holds
    a few score-sized fp32 tensors (scores, masked scores, probabilities), the gathered
    keys and values, and the int32 positions and booleans of the element mask. Under
    autograd every chunk keeps its probabilities, mask and gathered keys and values until
    the backward pass, which then needs a few score-sized gradients for one chunk at a time.
    """
    from .attention import _tile_chunks

    any_, _ = pattern.tile_layout(tile)
    per_tile = batch * heads * tile * tile * max(itemsize, 4)
    units = [rows.numel() * width for rows, width in _tile_chunks(any_.sum(1), per_tile, CHUNK_BYTES)]
    transient = per_tile * (4 + 2 * head_dim / tile) + 5 * tile * tile * 4
    if not backward:
        return int(transient * max(units))
    saved = per_tile * (1.5 + 2 * head_dim / tile) + tile * tile
    return int(saved * sum(units) + 2 * transient * max(units))


class _SparseMixer(MultiHeadMixer):
    """Shared: backend/tile validation and the linear part of the memory estimate."""

    def __init__(self, d_model, n_heads, backend, tile):
        super().__init__(d_model, n_heads)
        self.backend = check_choice(backend, "backend", BACKENDS)
        self.tile = check_positive_int(tile, "tile")

    def _linear_bytes(self, batch, length, itemsize, backward):
        # qkv projection (3), padded fp32 copies of q, k, v (3), the output, its gathers and the merge (4),
        # the output projection (1): about 11 activations of (batch, length, d_model); twice under autograd.
        n = 11 * batch * length * self.d_model * max(itemsize, 4)
        return 2 * n if backward else n

    def pattern(self, length):  # pragma: no cover - abstract
        raise NotImplementedError

    def memory_estimate(self, batch, length, dtype, mode: str = "forward"):
        check_choice(mode, "mode", ("forward", "forward_backward"))
        itemsize = torch.empty((), dtype=dtype).element_size()
        backward = mode == "forward_backward"
        return (self._linear_bytes(batch, length, itemsize, backward)
                + _pattern_bytes(self.pattern(length), batch, self.n_heads, self.head_dim, self.tile,
                                 itemsize, backward))


@register_mixer("longformer", family="sparse", causal=True,
                summary="Longformer (Beltagy et al. 2020): causal sliding window plus leading global tokens "
                        "(attention sinks); step() keeps a bounded cache.")
class LongformerMixer(_SparseMixer):
    """Causal sliding-window attention with ``n_global`` leading global tokens.

    Token t sees itself, the ``window // 2`` tokens before it, and tokens 0 … n_global − 1
    (which see everything before them): ``attention_mask("longformer", L, causal=True,
    window=window, global_tokens=range(n_global))``. With n_global ≥ 1 this is the
    "attention sink" pattern of streaming LLMs. ``step`` keeps the global tokens' keys
    and values plus the last window // 2 + 1 others: memory flat in the context length.
    """

    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, window: int = 16, n_global: int = 1, backend: str = "auto",
                 tile: int = 64):
        super().__init__(d_model, n_heads, backend, tile)
        self.window = check_positive_int(window, "window")
        self.n_global = check_positive_int(n_global, "n_global", minimum=0)

    def params(self, length):
        return dict(window=self.window, global_tokens=tuple(range(min(self.n_global, length))))

    def pattern(self, length):
        return make_pattern("longformer", length, causal=True, **self.params(length))

    def attend(self, q, k, v):
        return sparse_attention(q, k, v, "longformer", causal=True, backend=self.backend, tile=self.tile,
                                **self.params(q.shape[2]))

    def init_state(self, batch_size, device=None, dtype=None):
        """Empty caches: global tokens' (k, v) and the recent window's (k, v), each (batch, heads, 0, head_dim)."""
        dtype = dtype or self.qkv.weight.dtype
        device = device or self.qkv.weight.device
        empty = lambda: torch.zeros(batch_size, self.n_heads, 0, self.head_dim, device=device, dtype=dtype)  # noqa: E731
        return {"global_k": empty(), "global_v": empty(), "window_k": empty(), "window_v": empty(), "t": 0}

    def _step(self, x_t, state):
        if state["global_k"].shape[0] != x_t.shape[0]:
            raise ValueError(f"x_t has batch {x_t.shape[0]} but the state was made for batch "
                             f"{state['global_k'].shape[0]}")
        q, k, v = self.split_heads(x_t[:, None])
        t, state = state["t"], dict(state)
        if t < self.n_global:     # a global token: kept for ever (and it sees every earlier token: all global)
            state["global_k"] = torch.cat([state["global_k"], k], 2)
            state["global_v"] = torch.cat([state["global_v"], v], 2)
        else:                     # the window holds positions max(n_global, t − window//2) … t
            keep = self.window // 2 + 1
            state["window_k"] = torch.cat([state["window_k"], k], 2)[:, :, -keep:]
            state["window_v"] = torch.cat([state["window_v"], v], 2)[:, :, -keep:]
        keys = torch.cat([state["global_k"], state["window_k"]], 2)
        values = torch.cat([state["global_v"], state["window_v"]], 2)
        mask = torch.ones(1, keys.shape[2], dtype=torch.bool, device=x_t.device)
        y = masked_attention(q, keys, values, mask)
        state["t"] = t + 1
        return self.merge_heads(y)[:, 0], state


@register_mixer("bigbird", family="sparse", causal=False,
                summary="BigBird (Zaheer et al. 2020): window + global + random blocks; a non-causal encoder mixer.")
class BigBirdMixer(_SparseMixer):
    """Non-causal block-sparse attention: ``attention_mask("bigbird", L, block_size=…, num_random_blocks=…,
    num_global_blocks=…, seed=…)``. The random blocks are drawn once per length from ``seed`` (the same
    every call), as in BigBird's fixed random pattern."""

    causal = False

    def __init__(self, d_model: int, n_heads: int = 4, block_size: int = 16, num_random_blocks: int = 1,
                 num_global_blocks: int = 1, seed: int = 0, backend: str = "auto", tile: int = 64):
        super().__init__(d_model, n_heads, backend, tile)
        self.pattern_params = check_params("bigbird", dict(block_size=block_size, num_random_blocks=num_random_blocks,
                                                   num_global_blocks=num_global_blocks, seed=seed))

    def pattern(self, length):
        return make_pattern("bigbird", length, **self.pattern_params)

    def attend(self, q, k, v):
        return sparse_attention(q, k, v, "bigbird", backend=self.backend, tile=self.tile, **self.pattern_params)


@register_mixer("longnet", family="sparse", causal=True,
                summary="LongNet (Ding et al. 2023): causal dilated attention, branches (w, r) mixed by their "
                        "softmax denominators; per-head offsets.")
class LongNetMixer(_SparseMixer):
    """Causal LongNet: ``dilated_attention(q, k, v, segment_lengths, dilations, causal=True, offset=...)``.

    ``per_head_offsets`` (default True) gives head j the offset j mod r (LongNet §2.3).
    ``step`` keeps, per branch, the keys and values of the current segment only (at most w
    tokens, reset when a segment starts): memory flat in the context length.
    """

    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, segment_lengths=(16, 32, 64), dilations=(1, 2, 4),
                 per_head_offsets: bool = True, backend: str = "auto", tile: int = 64):
        super().__init__(d_model, n_heads, backend, tile)
        p = check_params("dilated", dict(segment_lengths=segment_lengths, dilations=dilations))
        self.segment_lengths, self.dilations = p["segment_lengths"], p["dilations"]
        self.offset = "per_head" if per_head_offsets else 0
        self.offsets = offset_table(self.offset, n_heads, self.dilations)

    def attend(self, q, k, v):
        return dilated_attention(q, k, v, self.segment_lengths, self.dilations, causal=True, offset=self.offset,
                                 backend=self.backend, tile=self.tile)

    def memory_estimate(self, batch, length, dtype, mode: str = "forward"):
        check_choice(mode, "mode", ("forward", "forward_backward"))
        itemsize = torch.empty((), dtype=dtype).element_size()
        backward = mode == "forward_backward"
        total = self._linear_bytes(batch, length, itemsize, backward)
        for w, r in zip(self.segment_lengths, self.dilations):
            kept = -(-min(w, length) // r) * -(-length // min(w, length))
            inner = make_pattern("dilated", max(kept, 1), causal=True, segment_lengths=[-(-w // r)], dilations=[1])
            tile = min(self.tile, -(-w // r))
            # per branch: the gathered q, k, v, its output and lse, the scattered output and lse (fp32)
            gathered = 8 * batch * self.d_model * kept * max(itemsize, 4) + 2 * batch * length * self.d_model * 4
            total += gathered + _pattern_bytes(inner, batch, self.n_heads, self.head_dim, tile, itemsize, backward)
        return total

    def init_state(self, batch_size, device=None, dtype=None):
        """Per branch: the current segment's keys and values, each (batch, heads, 0, head_dim) at first."""
        dtype = dtype or self.qkv.weight.dtype
        device = device or self.qkv.weight.device
        empty = lambda: torch.zeros(batch_size, self.n_heads, 0, self.head_dim, device=device, dtype=dtype)  # noqa: E731
        return {"k": [empty() for _ in self.segment_lengths], "v": [empty() for _ in self.segment_lengths], "t": 0}

    def _step(self, x_t, state):
        if state["k"][0].shape[0] != x_t.shape[0]:
            raise ValueError(f"x_t has batch {x_t.shape[0]} but the state was made for batch {state['k'][0].shape[0]}")
        q, k, v = self.split_heads(x_t[:, None])
        t = state["t"]
        new_k, new_v, outs, lses = [], [], [], []
        for p, (w, r) in enumerate(zip(self.segment_lengths, self.dilations)):
            if t % w == 0:                               # a new segment starts: forget the last one
                ks, vs = k, v
            else:
                ks, vs = torch.cat([state["k"][p], k], 2), torch.cat([state["v"][p], v], 2)
            new_k.append(ks)
            new_v.append(vs)
            u = torch.arange(t - t % w, t + 1, device=x_t.device) % w         # positions in the segment
            offs = torch.tensor([row[p] for row in self.offsets], device=x_t.device)[:, None]
            kept = (u[None, :] % r) == offs                                   # (heads, cached)
            mask = (kept & kept[:, -1:])[:, None, :]                          # a head attends only if t is kept
            out, lse = masked_attention(q, ks, vs, mask, return_lse=True)
            outs.append(out.to(lse.dtype))
            lses.append(lse)
        y = mix_branches(outs, lses).to(q.dtype)
        return self.merge_heads(y)[:, 0], {"k": new_k, "v": new_v, "t": t + 1}
