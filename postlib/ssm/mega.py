"""Mega (Ma et al. 2023): a damped EMA under single-head gated attention, and Mega-chunk.

Attention has no inductive bias for order or locality; an SSM has nothing else. Mega puts the cheap real EMA
(``postlib.ssm.ema``) in front, so the attention works on a smoothed, position-aware signal, and gates
everything like a GRU (§3.2–3.3 of the paper; the EMA residual ω and the SiLU follow the official code):

    X' = SiLU(EMA(X) + ω ⊙ X)                                    the EMA sub-layer
    Z  = SiLU(X' W_z + b_z),  Q = κ_q ⊙ Z + μ_q,  K = κ_k ⊙ Z + μ_k   one shared z-dimensional representation
    V  = SiLU(X W_v + b_v)                                         values from the *raw* input
    O  = softmax(Q Kᵀ / √z + causal mask) V                         single-head attention
    γ  = SiLU(X' W_γ + b_γ)                                        reset gate
    φ  = σ(X' W_φ + b_φ)                                           update gate
    Ĥ  = SiLU(X' W_h + (γ ⊙ O) U_h + b_h)
    Y  = φ ⊙ Ĥ + (1 − φ) ⊙ X                                       the layer's output (a gated residual)

Mega-chunk (``chunk_size=C``) cuts the sequence into chunks of C tokens and lets attention look only inside
its own chunk: O(L·C) instead of O(L²). Information still crosses chunks — through the EMA, whose state runs
over the whole sequence. ``step`` keeps the EMA state and the keys and values of the current chunk (all past
tokens when ``chunk_size`` is None) and equals ``forward``. We omit the paper's relative position bias: the
EMA already gives the attention its sense of order.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int, check_tensor
from ..registry import Mixer, itemsizes, register_mixer
from .ema import damped_ema, ema_step


SMALL_BUFFERS = 2**14   # bytes: masks, index vectors, FFT plans — fixed per call, added to memory_estimate

def local_causal_mask(length: int, chunk_size: int | None, device=None) -> torch.Tensor:
    """(L, L) bool: query i may see key j iff j ≤ i and both lie in the same chunk (any j ≤ i when chunk_size is None)."""
    check_positive_int(length, "length")
    i = torch.arange(length, device=device)
    mask = i[None, :] <= i[:, None]
    if chunk_size is not None:
        mask &= (i[:, None] // check_positive_int(chunk_size, "chunk_size")) == (i[None, :] // chunk_size)
    return mask


def chunked_causal_attention(q, k, v, chunk_size: int | None = None) -> torch.Tensor:
    """Single-head causal softmax attention, local to chunks of ``chunk_size`` tokens (global when None).

    q, k: (B, L, z); v: (B, L, d_v). Chunks are computed as a batch of (C × C) blocks: O(L·C) memory.
    Equals softmax attention with :func:`local_causal_mask` (tests/ssm/test_mega.py).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name, 3, "(batch, length, dim)")
    B, L, z = q.shape
    scale = 1.0 / math.sqrt(z)
    if chunk_size is None or chunk_size >= L:
        scores = (q @ k.transpose(-1, -2)) * scale
        scores = scores.masked_fill(~local_causal_mask(L, None, q.device), float("-inf"))
        return torch.softmax(scores, dim=-1) @ v
    C = check_positive_int(chunk_size, "chunk_size")
    n = -(-L // C)
    pad = n * C - L                                     # padding sits after every real token: the mask hides it
    qc, kc, vc = (F.pad(t, (0, 0, 0, pad)).view(B, n, C, t.shape[-1]) for t in (q, k, v))
    scores = (qc @ kc.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~local_causal_mask(C, None, q.device), float("-inf"))
    return (torch.softmax(scores, dim=-1) @ vc).reshape(B, n * C, v.shape[-1])[:, :L]


@register_mixer("mega", family="ssm", causal=True,
                summary="Mega: multi-dimensional damped EMA (a real diagonal SSM) under single-head gated attention "
                        "with reset/update gates; chunk_size=C gives Mega-chunk (attention local to each chunk).")
class MegaMixer(Mixer):
    causal = True

    def __init__(self, d_model: int, ema_dim: int = 16, z_dim: int | None = None, v_dim: int | None = None,
                 chunk_size: int | None = None):
        super().__init__(d_model)
        self.ema_dim = check_positive_int(ema_dim, "ema_dim")
        self.z_dim = check_positive_int(z_dim if z_dim is not None else max(8, d_model // 4), "z_dim")
        self.v_dim = check_positive_int(v_dim if v_dim is not None else 2 * d_model, "v_dim")
        self.chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        D, h = d_model, self.ema_dim
        # EMA parameters: α = σ(alpha_logit), δ = σ(delta_logit) stay inside (0, 1) whatever the optimiser does.
        self.alpha_logit = nn.Parameter(0.2 * torch.randn(D, h))
        self.delta_logit = nn.Parameter(0.2 * torch.randn(D, h))
        signs = torch.ones(h)
        signs[1::2] = -1.0                                                   # β alternates ±1 (official init)
        self.beta = nn.Parameter(signs + 0.02 * torch.randn(D, h))
        self.eta = nn.Parameter(torch.randn(D, h) / math.sqrt(h))
        self.omega = nn.Parameter(torch.randn(D))
        self.to_z = nn.Linear(D, self.z_dim)
        self.qk_scale = nn.Parameter(1.0 + 0.02 * torch.randn(2, self.z_dim))   # κ_q, κ_k
        self.qk_offset = nn.Parameter(torch.zeros(2, self.z_dim))               # μ_q, μ_k
        self.to_v = nn.Linear(D, self.v_dim)
        self.to_reset = nn.Linear(D, self.v_dim)                                 # W_γ
        self.to_update = nn.Linear(D, D)                                         # W_φ
        self.to_h = nn.Linear(D, D)                                              # W_h, b_h
        self.u_h = nn.Linear(self.v_dim, D, bias=False)                          # U_h

    def ema_parameters(self):
        """(α, δ, β, η), each (d_model, ema_dim) — ready for ``damped_ema``."""
        return torch.sigmoid(self.alpha_logit), torch.sigmoid(self.delta_logit), self.beta, self.eta

    def _gates(self, x, x_ema, attend):
        """Everything after the EMA. x, x_ema: (B, T, d) — raw input and EMA output (before ω and SiLU)."""
        xp = F.silu(x_ema + self.omega * x)
        z = F.silu(self.to_z(xp))
        q = z * self.qk_scale[0] + self.qk_offset[0]
        k = z * self.qk_scale[1] + self.qk_offset[1]
        v = F.silu(self.to_v(x))
        o, extra = attend(q, k, v)
        reset = F.silu(self.to_reset(xp))
        update = torch.sigmoid(self.to_update(xp))
        h = F.silu(self.to_h(xp) + self.u_h(reset * o))
        return update * h + (1 - update) * x, extra

    def _forward(self, x):
        x_ema = damped_ema(x, *self.ema_parameters(), backend="fft")
        y, _ = self._gates(x, x_ema, lambda q, k, v: (chunked_causal_attention(q, k, v, self.chunk_size), None))
        return y

    def init_state(self, batch_size, device=None, dtype=None):
        """{"ema": (batch, d_model, ema_dim) zeros; "k", "v": the current chunk's keys and values; "n": tokens seen}."""
        dtype = dtype or self.beta.dtype
        device = device or self.beta.device
        return {"ema": torch.zeros(batch_size, self.d_model, self.ema_dim, dtype=dtype, device=device),
                "k": torch.zeros(batch_size, 0, self.z_dim, dtype=dtype, device=device),
                "v": torch.zeros(batch_size, 0, self.v_dim, dtype=dtype, device=device), "n": 0}

    def _step(self, x_t, state):
        alpha, delta, beta, eta = (p.to(x_t.dtype) for p in self.ema_parameters())
        y_ema, ema = ema_step(x_t, state["ema"], alpha, delta, beta, eta)
        new_chunk = self.chunk_size is not None and state["n"] % self.chunk_size == 0
        k_cache, v_cache = (state["k"][:, :0], state["v"][:, :0]) if new_chunk else (state["k"], state["v"])

        def attend(q, k, v):                        # the new token attends to the cache and to itself
            keys, values = torch.cat([k_cache, k], dim=1), torch.cat([v_cache, v], dim=1)
            weights = torch.softmax((q @ keys.transpose(-1, -2)) / math.sqrt(self.z_dim), dim=-1)
            return weights @ values, (keys, values)

        y, (keys, values) = self._gates(x_t[:, None], y_ema[:, None], attend)
        return y[:, 0], {"ema": ema, "k": keys, "v": values, "n": state["n"] + 1}

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Upper bound on the bytes one call allocates (CONTRACTS §1): ~8 activations of (batch, length,
        max(d, v_dim)); the EMA's FFT buffers (complex, 2L, fp32 at least) and its (d × h × L) kernel powers,
        twice; the attention scores three times — (L × L) per batch row, or (L × C) with chunks. With backward:
        twice that plus the parameters' size; the base class adds the gradients and its margin. Checked against
        the measured peak (≤ estimate ≤ 8 × peak) in tests/recurrent/test_recurrent_contracts.py and
        tests/test_registry.py."""
        _, item = itemsizes(dtype)
        acts = 8 * batch * length * max(self.d_model, self.v_dim)
        fft = 8 * batch * length * self.d_model + 2 * self.d_model * self.ema_dim * length
        C = length if self.chunk_size is None else min(self.chunk_size, length)
        scores = 3 * batch * (-(-length // C) * C) * C
        total = item * (acts + fft + scores)
        params = item * sum(p.numel() for p in self.parameters())
        return self._estimate(mode, dtype, total + SMALL_BUFFERS, 2 * total + params + SMALL_BUFFERS)
