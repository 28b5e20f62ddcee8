"""RetNet's gated multi-scale retention (Sun et al. 2023, §2.2) as a registered mixer.

    γ_h = 1 − 2^(−5−h)                                     one fixed decay per head (Eq. 8)
    Q = (X W_Q) ⊙ Θ,  K = (X W_K) ⊙ Θ̄,  V = X W_V           Θ_n = e^{inθ}: an xPos-style rotation (Eq. 5)
    head_h = Retention(X, γ_h)                              (QKᵀ ⊙ D) V, normalised as below
    Y = GroupNorm_h(Concat(head_1 … head_H))                 one group per head
    MSR(X) = (swish(X W_G) ⊙ Y) W_O

Retention score normalisation (§2.2 of the paper, "Retention Score Normalization"; kept here and not in the
raw operator ``retention``): QKᵀ/√d; D̃_nm = D_nm / √(Σ_{i≤n} D_ni); and with R = QKᵀ ⊙ D̃,
R̃_nm = R_nm / max(|Σ_{i≤n} R_ni|, 1). Each factor is one number per (position, head), which the group norm
would divide out anyway — they are there for numerical range. Every one of them has a recurrent form:
Σ_{i≤n} D_ni = (1 − γ^{n+1})/(1 − γ), and Σ_i R_ni is q_n · z_n with z_n = γ z_{n−1} + k_n — the same
recurrence run on a column of ones appended to V. So the mixer runs *one* retention call on [V, 1] and
gets numerators and row sums together; ``step`` keeps, per head, S_n (d_k × d_v) with z_n as an extra column.

The rotation follows the official code (torchscale): pairs (x_{2i}, x_{2i+1}) turn by nθ_i with
θ_i = 10000^{−i/(d_k/2 − 1)}; xPos's extra length scaling is replaced by the decay γ.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive_int
from ..registry import Mixer, itemsizes, register_mixer
from .recurrence import DEFAULT_CHUNK, recurrent_step
from .retention import BACKENDS, retention, retnet_gammas


SMALL_BUFFERS = 2**15   # bytes: masks, index vectors, FFT plans — fixed per call, added to memory_estimate

def rotation_angles(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """θ_i = base^(−i/(d/2 − 1)), i = 0 … d/2 − 1 (the official RetNet schedule), one per pair of channels."""
    check_positive_int(head_dim, "head_dim", minimum=2)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for the pairwise rotation, got {head_dim}")
    return 1.0 / base ** torch.linspace(0, 1, head_dim // 2, dtype=torch.float64)


def rotate(x: torch.Tensor, positions: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Turn each channel pair (x_{2i}, x_{2i+1}) of x (..., L, d) by positions_n · θ_i — multiply by e^{inθ}.

    Rotating q by nθ and k by mθ leaves q_n · k_m depending on n − m only: a relative position.
    """
    phase = positions.to(angles.dtype)[:, None] * angles[None, :]             # (L, d/2)
    cos, sin = torch.cos(phase).to(x.dtype), torch.sin(phase).to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def row_decay_sums(gamma: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Σ_{i≤n} γ^{n−i} = (1 − γ^{n+1}) / (1 − γ) for each head and position n: (heads, L)."""
    log_g = torch.log(gamma)[:, None]
    return torch.expm1((positions.to(gamma.dtype)[None, :] + 1) * log_g) / torch.expm1(log_g)


def normalise_retention(raw: torch.Tensor, gamma: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """R̃V from raw retention on [V, 1] (the last column holds Σ_i QKᵀ⊙D row sums): the paper's normalisation.

    raw: (B, H, L, d_v + 1) with k already scaled by 1/√d_k. Returns (B, H, L, d_v).
    """
    scale = row_decay_sums(gamma, positions).sqrt()[None, :, :, None].to(raw.dtype)   # √(Σ_i D_ni): D → D̃
    num, row_sum = raw[..., :-1] / scale, raw[..., -1:] / scale
    return num / row_sum.abs().clamp(min=1.0)


@register_mixer("retnet", family="recurrent", causal=True,
                summary="RetNet: gated multi-scale retention (γ_h = 1 − 2^(−5−h), rotation, swish gate, group "
                        "norm); parallel, chunkwise and recurrent forms; step keeps a d_k × d_v state per head.")
class RetNetMixer(Mixer):
    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, value_factor: int = 2, chunk_size: int = DEFAULT_CHUNK,
                 backend: str = "auto", norm_eps: float = 1e-5):
        super().__init__(d_model)
        self.n_heads = check_positive_int(n_heads, "n_heads")
        check_positive_int(value_factor, "value_factor")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.key_dim = d_model // n_heads
        if self.key_dim % 2:
            raise ValueError(f"d_model / n_heads = {self.key_dim} must be even (the rotation turns channel pairs)")
        self.value_dim = value_factor * d_model
        self.head_v = self.value_dim // n_heads
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.backend = check_choice(backend, "backend", BACKENDS)
        # W_Q, W_K, W_V, W_G in one matrix (one matmul per call; decoding is dominated by per-op overhead)
        self.splits = (d_model, d_model, self.value_dim, self.value_dim)
        self.qkvg = nn.Linear(d_model, sum(self.splits), bias=False)
        self.out_proj = nn.Linear(self.value_dim, d_model, bias=False)
        self.group_norm = nn.GroupNorm(n_heads, self.value_dim, eps=norm_eps)
        with torch.no_grad():
            for block in self.qkvg.weight.split(self.splits):
                nn.init.xavier_uniform_(block, gain=2 ** -2.5)         # small projections, as in the paper's code
        nn.init.xavier_uniform_(self.out_proj.weight)
        self._constants: dict = {}

    # -- shared by forward and step ------------------------------------------------------------------------
    @property
    def gamma(self) -> torch.Tensor:
        """γ_h = 1 − 2^(−5−h), fp32, on the parameters' device."""
        return self._constant("gamma", torch.float32, self.qkvg.weight.device)

    def _constant(self, name: str, dtype, device) -> torch.Tensor:
        """γ or the rotation angles θ, cached per (dtype, device). Not buffers: ``.bfloat16()`` would round
        1 − 2^(−9) to 1 and the angles to 3 digits; they are exact in fp32 (γ) and computed in fp64 (θ)."""
        key = (name, dtype, device)
        if key not in self._constants:
            value = retnet_gammas(self.n_heads, torch.float64) if name == "gamma" else rotation_angles(self.key_dim)
            self._constants[key] = value.to(device=device, dtype=dtype)
        return self._constants[key]

    def _gamma(self, dtype):
        """γ in fp64 for fp64 inputs, else fp32 (every γ_h = 1 − 2^(−5−h) is exact in fp32, not in bf16)."""
        dtype = torch.float64 if dtype == torch.float64 else torch.float32
        return self._constant("gamma", dtype, self.qkvg.weight.device)
    def _qkvg(self, x: torch.Tensor, positions: torch.Tensor):
        """x (B, L, d) → rotated q, k (B, H, L, d_k) with k / √d_k; v with a ones column (B, H, L, d_v + 1); g."""
        B, L, _ = x.shape
        heads = lambda t, d: t.view(B, L, self.n_heads, d).transpose(1, 2)
        angles = self._constant("angles", torch.float64, x.device)     # fp64 phases, cast after cos/sin
        q, k, v, g = self.qkvg(x).split(self.splits, dim=-1)
        q = rotate(heads(q, self.key_dim), positions, angles)
        k = rotate(heads(k, self.key_dim), positions, angles) / math.sqrt(self.key_dim)
        v = heads(v, self.head_v)
        v1 = torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)
        return q, k, v1, g

    def _output(self, raw, g, positions):
        """Normalised retention → group norm per head → swish gate → W_O. raw (B, H, L, d_v + 1); g (B, L, d_v·H)."""
        B, H, L, _ = raw.shape
        y = normalise_retention(raw, self._gamma(raw.dtype), positions)
        y = y.transpose(1, 2).reshape(B * L, self.value_dim)
        y = self.group_norm(y).view(B, L, self.value_dim)
        return self.out_proj(F.silu(g) * y)

    def _forward(self, x):
        positions = torch.arange(x.shape[1], device=x.device)
        q, k, v1, g = self._qkvg(x, positions)
        raw = retention(q, k, v1, self._gamma(x.dtype), backend=self.backend, chunk_size=self.chunk_size)
        return self._output(raw, g, positions)

    def init_state(self, batch_size, device=None, dtype=None):
        """{"S": (batch, heads, d_k, d_v + 1) zeros — S_n with z_n as its last column; "n": tokens seen}."""
        dtype = dtype or self.qkvg.weight.dtype
        device = device or self.qkvg.weight.device
        return {"S": torch.zeros(batch_size, self.n_heads, self.key_dim, self.head_v + 1, dtype=dtype, device=device),
                "n": 0}

    def _step(self, x_t, state):
        positions = torch.tensor([state["n"]], device=x_t.device)
        q, k, v1, g = self._qkvg(x_t[:, None], positions)
        log_gamma = torch.log(self._gamma(x_t.dtype))
        raw, S = recurrent_step(q[:, :, 0], k[:, :, 0], v1[:, :, 0], state["S"], log_gamma)   # Eq. 6
        y = self._output(raw[:, :, None], g, positions)
        return y[:, 0], {"S": S, "n": state["n"] + 1}

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Upper bound on the bytes one call allocates (CONTRACTS §1): ~24 activations of (batch, length, d_model)
        (projections, their per-head copies, [V, 1], the normalised output, norm, gate), one chunk's C × C scores
        and decays, the state. With backward: ~36 activations, every chunk's scores and decays
        (batch · heads · length · C, kept by the graph) and a copy of the parameters' size; the base class adds
        the gradients and its margin. Checked against the measured peak (≤ estimate ≤ 8 × peak) in
        tests/recurrent/test_recurrent_contracts.py and tests/test_registry.py."""
        _, item = itemsizes(dtype)
        C = min(self.chunk_size, length)
        act = batch * length * self.d_model
        chunk = 6 * batch * self.n_heads * C * C + 4 * batch * self.n_heads * self.key_dim * (self.head_v + 1)
        params = sum(p.numel() for p in self.parameters())
        forward = item * (24 * act + chunk) + SMALL_BUFFERS
        backward = item * (36 * act + 4 * batch * self.n_heads * length * C + chunk + params) + SMALL_BUFFERS
        return self._estimate(mode, dtype, forward, backward)
