"""What S4, DSS and S4D share: an SSM per channel run as a long convolution (training) or a recurrence (generation).

A layer holds H = d_model independent single-input single-output SSMs. In convolution mode the
kernel K (H, L) is computed once per forward and applied with an FFT in O(L log L); in recurrent
mode ``step`` advances the state in O(N) per channel per token. Both give y = K * u + D u, followed by
GELU and a position-wise Linear as in the S4 block. ``fft_causal_conv`` ≡ the direct sum
Σ_{j≤k} K_j u_{k−j} (tests/ssm/test_s4d.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_dt_range, check_finite, check_tensor
from ..registry import Mixer, itemsizes


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; everything else is computed in fp32 (there is no complex half FFT on CPU, and a
    half-precision kernel K = C Ā^k B̄ would lose the slowly decaying tail that makes SSMs remember)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """A parameter in the kernel's working precision (fp16/bf16 → fp32; fp32/fp64 unchanged, no copy)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def fft_causal_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """y_k = Σ_{j≤k} K_j u_{k−j}: u (..., H, L), K (H, L) → (..., H, L). Zero-padded to 2L so it is causal, not circular.

    Non-finite ``u`` or ``K`` is refused: the FFT would carry one NaN to *every*
    output, earlier ones included (``direct_causal_conv`` keeps it causal).
    """
    check_tensor(u, "u", None, "(..., H, L)")
    check_tensor(K, "K", None, "(H, L)")
    if u.dim() < 2 or K.shape != u.shape[-2:]:
        raise ValueError(f"K must have shape (H, L) = {tuple(u.shape[-2:])} to match u (..., H, L), got "
                         f"u {tuple(u.shape)} and K {tuple(K.shape)}")
    why = "the FFT would spread it to earlier outputs; use direct_causal_conv to keep it causal"
    check_finite(u, "u", why)
    check_finite(K, "K", why)
    if u.numel() == 0:                                     # an empty batch (the FFT libraries refuse size 0)
        return u.new_zeros(u.shape)
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)
    return y[..., :L]


def direct_causal_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The definition of :func:`fft_causal_conv`, O(L²): for tests and exercises."""
    L = u.shape[-1]
    out = torch.zeros_like(u)
    for k in range(L):
        out[..., k] = (K[..., : k + 1].flip(-1) * u[..., : k + 1]).sum(-1)
    return out


class ConvSSMMixer(Mixer):
    """Base: subclasses give ``kernel(L) -> (H, L)`` and ``_recur(u_t (B,H), state) -> (y_t (B,H), state)``."""

    causal = True

    def __init__(self, d_model: int, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__(d_model)
        dt_min, dt_max = check_dt_range(dt_min, dt_max)
        # Δ log-uniform in [dt_min, dt_max]: each channel watches a different timescale.
        u = torch.rand(d_model)
        self.log_dt = nn.Parameter(math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min)))
        self.D = nn.Parameter(torch.randn(d_model))
        self.out = nn.Linear(d_model, d_model)

    def dt(self) -> torch.Tensor:
        """Δ per channel, in at least fp32 (the kernel is always computed in fp32 or fp64)."""
        return torch.exp(at_least_fp32(self.log_dt))

    def _forward(self, x):
        work = work_dtype(x.dtype)                             # fp16/bf16 layers convolve in fp32
        u = x.transpose(1, 2).to(work)                         # (B, H, L)
        K = self.kernel(x.shape[1]).to(work)
        y = fft_causal_conv(u, K) + self.D.to(work)[:, None] * u
        return self.out(F.gelu(y.transpose(1, 2).to(x.dtype)))

    def _step(self, x_t, state):
        y, state = self._recur(x_t.to(work_dtype(x_t.dtype)), state)
        y = y.to(x_t.dtype) + self.D * x_t
        return self.out(F.gelu(y)), state

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """The FFT convolution (u and K zero-padded to 2L, their spectra, the product, the inverse: about eight
        (batch, d_model, length) working copies forward, sixteen with the backward) plus computing the kernel K, which does not grow with
        the batch (``_kernel_bytes``)."""
        s, w = itemsizes(dtype)
        n = batch * self.d_model * length
        kernel_f, kernel_fb = self._kernel_bytes(length, w)
        conv_f = 8 * n * w + 4 * self.d_model * length * w + 2 * n * s + n
        conv_fb = 16 * n * w + 8 * self.d_model * length * w + 4 * n * s + n
        return self._estimate(mode, dtype, conv_f + kernel_f, conv_fb + kernel_fb)

    def _kernel_bytes(self, length: int, w: int) -> tuple[int, int]:  # pragma: no cover - abstract
        """(forward, forward + backward) bytes of ``kernel(length)``, whose real parts are ``w`` bytes each."""
        raise NotImplementedError

    def kernel(self, L: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _recur(self, u_t, state):  # pragma: no cover - abstract
        raise NotImplementedError
