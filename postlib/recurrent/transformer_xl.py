"""Transformer-XL (Dai et al. 2019): segment-level recurrence with relative positional encoding.

A vanilla Transformer trained on fixed segments of S tokens sees nothing before its segment: the context is
fragmented. Transformer-XL caches the hidden states of the previous segment (a *memory* of M states, no
gradient through it) and lets each segment attend to [memory, segment]:

    h̃^{n−1}_τ+1 = [SG(m^{n−1}_τ) ∘ h^{n−1}_τ+1]                               (§3.2: SG = stop-gradient)
    q = h^{n−1}_τ+1 W_q,   k = h̃^{n−1}_τ+1 W_k,   v = h̃^{n−1}_τ+1 W_v

Absolute positions would clash between the memory and the segment (both start at 0), so positions enter only
as the distance i − j, through a fixed sinusoid R_{i−j}. The score of query i and key j has four terms (§3.3):

    A^rel_ij = E_iᵀ W_qᵀ W_k,E E_j        (a) content     →  q_i · k_j
             + E_iᵀ W_qᵀ W_k,R R_{i−j}    (b) position    →  q_i · r_{i−j}
             + uᵀ W_k,E E_j               (c) content bias →  u · k_j
             + vᵀ W_k,R R_{i−j}           (d) position bias → v · r_{i−j}
           = (q_i + u) · k_j + (q_i + v) · r_{i−j}

Term (b)+(d) needs r at every distance i − j: computing (q_i + v) · r_m once for all m and *shifting* each row
into place (:func:`rel_shift`, the paper's Appendix B trick) avoids an (L × K × d) gather;
:func:`relative_scores_loop` is the direct loop over (i, j) it equals (tests/recurrent/test_transformer_xl.py).

The mixer's ``forward`` processes a long input segment by segment, carrying the memory; ``step`` decodes token
by token with the same memory and equals ``forward``. ``memory_length=0`` is the vanilla segment model.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_positive_int, check_tensor
from ..registry import Mixer, itemsizes, register_mixer


SMALL_BUFFERS = 2**11   # bytes: masks, index vectors, FFT plans — fixed per call, added to memory_estimate

def sinusoid_embedding(distances: torch.Tensor, dim: int) -> torch.Tensor:
    """R_d = [sin(d ω_0), …, sin(d ω_{dim/2−1}), cos(d ω_0), …] with ω_i = 10000^(−2i/dim): (len(distances), dim)."""
    check_positive_int(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even (sin and cos halves), got {dim}")
    inv_freq = 1.0 / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float64, device=distances.device) / dim)
    phase = distances.to(torch.float64)[:, None] * inv_freq[None, :]
    return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """Shift row i of x (..., L, K) left by L − 1 − i: column m (distance K − 1 − m) lands where key j sits.

    With keys j = 0 … K−1, queries i = 0 … L−1 at key positions K − L + i and columns ordered by *descending*
    distance (m ↔ K − 1 − m), the output at (i, j) is x[i, j + L − 1 − i] — the entry for distance
    (K − L + i) − j. Entries with j > K − L + i (the future) are junk, to be masked. The trick: pad one zero
    column on the left, reinterpret the (L, K + 1) block as (K + 1, L), drop its first row, read back (L, K).
    """
    *batch, L, K = x.shape
    padded = torch.cat([x.new_zeros(*batch, L, 1), x], dim=-1)              # (..., L, K + 1)
    return padded.reshape(*batch, K + 1, L)[..., 1:, :].reshape(*batch, L, K)


def relative_scores(q, k, r, u, v) -> torch.Tensor:
    """A^rel for every (i, j) by the shift trick. q (B, H, L, D); k (B, H, K, D); r (H, K, D) = W_k,R R_d for
    d = K−1, …, 0 (descending); u, v (H, D). Returns (B, H, L, K); entries above the causal boundary are junk."""
    content = (q + u[:, None]) @ k.transpose(-1, -2)                        # (a) + (c)
    position = (q + v[:, None]) @ r.transpose(-1, -2)                       # (b) + (d), column m ↔ distance K−1−m
    return content + rel_shift(position)


def relative_scores_loop(q, k, r_by_distance, u, v) -> torch.Tensor:
    """The four terms straight from §3.3, one (i, j) pair at a time: the reference for :func:`relative_scores`.

    r_by_distance (H, K, D): row d is W_k,R R_d. Query i sits at key position K − L + i; pairs with j beyond it
    (the future) are −inf.
    """
    B, H, L, D = q.shape
    K = k.shape[2]
    out = torch.full((B, H, L, K), float("-inf"), dtype=q.dtype, device=q.device)
    for i in range(L):
        for j in range(K - L + i + 1):
            r_ij = r_by_distance[:, K - L + i - j]                          # (H, D)
            a = (q[:, :, i] * k[:, :, j]).sum(-1)
            b = (q[:, :, i] * r_ij).sum(-1)
            c = (u * k[:, :, j]).sum(-1)
            d = (v * r_ij).sum(-1)
            out[:, :, i, j] = a + b + c + d
    return out


@register_mixer("transformer_xl", family="recurrent", causal=True,
                summary="Transformer-XL: segment-level recurrence (attend to a stop-gradient memory of the previous "
                        "segment) with relative positions (u, v biases, the shift trick).")
class TransformerXLMixer(Mixer):
    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, segment_length: int = 16, memory_length: int | None = None):
        super().__init__(d_model)
        self.n_heads = check_positive_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.head_dim = d_model // n_heads
        self.segment_length = check_positive_int(segment_length, "segment_length")
        self.memory_length = check_positive_int(segment_length if memory_length is None else memory_length,
                                                "memory_length", minimum=0)
        if d_model % 2:
            raise ValueError(f"d_model must be even for the sinusoid position embedding, got {d_model}")
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.r_net = nn.Linear(d_model, d_model, bias=False)                 # W_k,R
        self.u = nn.Parameter(0.02 * torch.randn(n_heads, self.head_dim))    # content bias
        self.v = nn.Parameter(0.02 * torch.randn(n_heads, self.head_dim))    # position bias
        self.out = nn.Linear(d_model, d_model, bias=False)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.shape[0], t.shape[1], self.n_heads, self.head_dim).transpose(1, 2)

    def _project(self, x):
        """x (B, T, d) → q, k, v (B, H, T, D). Keys and values carry no position, so cached ones stay valid."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self._heads(q), self._heads(k), self._heads(v)

    def _position_keys(self, K: int, dtype, device) -> torch.Tensor:
        """r (H, K, D) = W_k,R R_d for distances d = K−1, …, 0."""
        R = sinusoid_embedding(torch.arange(K - 1, -1, -1, device=device), self.d_model).to(dtype)
        return self.r_net(R).view(K, self.n_heads, self.head_dim).transpose(0, 1)

    def _attend(self, q, k, v, causal_offset: int):
        """Softmax over the relative scores; query i may see keys j ≤ causal_offset + i."""
        L, K = q.shape[2], k.shape[2]
        scores = relative_scores(q, k, self._position_keys(K, q.dtype, q.device), self.u, self.v)
        i = torch.arange(L, device=q.device)[:, None]
        j = torch.arange(K, device=q.device)[None, :]
        scores = scores.masked_fill(j > causal_offset + i, float("-inf")) / math.sqrt(self.head_dim)
        out = torch.softmax(scores, dim=-1) @ v
        return self.out(out.transpose(1, 2).reshape(q.shape[0], L, self.d_model))

    def segment_forward(self, x_seg, memory):
        """One segment: x_seg (B, S, d) attends to [SG(memory) (B, M, d), x_seg]. Returns (y, next memory)."""
        memory = memory.detach()                                             # no gradient into the past segment
        q, _, _ = self._project(x_seg)
        _, k, v = self._project(torch.cat([memory, x_seg], dim=1))
        y = self._attend(q, k, v, causal_offset=memory.shape[1])
        nxt = torch.cat([memory, x_seg], dim=1)[:, max(0, memory.shape[1] + x_seg.shape[1] - self.memory_length):]
        return y, nxt.detach() if self.memory_length else nxt[:, :0]

    def _forward(self, x):
        memory = x[:, :0]
        outs = []
        for segment in torch.split(x, self.segment_length, dim=1):   # split: one concatenation in backward
            y, memory = self.segment_forward(segment, memory)
            outs.append(y)
        return torch.cat(outs, dim=1)

    def init_state(self, batch_size, device=None, dtype=None):
        """{"k", "v": cached keys and values (batch, heads, n, head_dim) of the memory then the current segment;
        "memory": how many of them are memory; "offset": the position inside the current segment}."""
        dtype = dtype or self.qkv.weight.dtype
        device = device or self.qkv.weight.device
        empty = torch.zeros(batch_size, self.n_heads, 0, self.head_dim, dtype=dtype, device=device)
        return {"k": empty, "v": empty.clone(), "memory": 0, "offset": 0}

    def _step(self, x_t, state):
        q, k_t, v_t = self._project(x_t[:, None])
        k = torch.cat([state["k"], k_t], dim=2)
        v = torch.cat([state["v"], v_t], dim=2)
        y = self._attend(q, k, v, causal_offset=k.shape[2] - 1)
        memory, offset = state["memory"], state["offset"] + 1
        if offset == self.segment_length:                 # segment done: it (with the old memory) becomes memory
            keep = min(self.memory_length, k.shape[2])
            k, v = k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:]
            memory, offset = keep, 0
        return y[:, 0], {"k": k, "v": v, "memory": memory, "offset": offset}

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Per segment: projections of [memory, segment] and the (heads × S × (M + S)) scores a few times over;
        the outputs of all segments. With backward, the graph keeps every segment's scores, plus twice the
        parameters' size; the base class adds the gradients and its margin. Checked against the measured peak
        (≤ estimate ≤ 8 × peak) in tests/recurrent/test_recurrent_contracts.py and tests/test_registry.py."""
        _, item = itemsizes(dtype)
        S = min(self.segment_length, length)
        K = S + min(self.memory_length, max(length - S, 0))
        n_seg = -(-length // self.segment_length)
        per_segment = 12 * batch * K * self.d_model + 6 * batch * self.n_heads * S * K + 2 * K * self.d_model
        outputs = 3 * batch * length * self.d_model
        params = sum(p.numel() for p in self.parameters())
        forward = item * (per_segment + outputs) + SMALL_BUFFERS
        backward = item * (n_seg * per_segment + 2 * outputs + 2 * params) + SMALL_BUFFERS
        return self._estimate(mode, dtype, forward, backward)
