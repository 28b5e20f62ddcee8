"""Mega's multi-dimensional damped EMA (Ma et al. 2023, §3.1): S4 reduced to a real, diagonal SSM.

Each of the D channels is expanded into h dimensions by β, smoothed by its own exponential moving average with
a damping factor δ, and projected back by η:

    h_t = α ⊙ β x_t + (1 − α ⊙ δ) ⊙ h_{t−1}          α, δ ∈ (0, 1)^{D×h}
    y_t = Σ_h η ⊙ h_t

This is a diagonal linear SSM with *real* A = diag(1 − αδ) ∈ (0, 1), B = αβ, C = η: S4D (part 2) with the
imaginary parts of its eigenvalues set to zero and no discretization step — so the same two views hold:

* recurrent — the loop above, O(D·h) state, one step per token (decoding);
* convolution — y = K ∗ x with the kernel K_t = Σ_h η α β (1 − αδ)^t, computed by FFT in O(L log L).

``damped_ema(..., backend="fft")`` equals the loop (``backend="recurrent"``) in fp64 at awkward lengths
(``tests/ssm/test_mega.py``). An FFT mixes every position with every other before the causal part is cut out,
so a NaN or Inf anywhere would reach earlier outputs: the FFT backend rejects non-finite input; the loop stays
causal and accepts it.
"""
from __future__ import annotations

import torch

from .._checks import check_choice, check_finite, check_positive_int, check_same, check_tensor

BACKENDS = ("auto", "recurrent", "fft")


def check_ema_parameters(alpha, delta, beta, eta, dim: int | None = None) -> None:
    """alpha, delta, beta, eta: float tensors (dim, h); alpha and delta strictly inside (0, 1)."""
    for name, p in (("alpha", alpha), ("delta", delta), ("beta", beta), ("eta", eta)):
        check_tensor(p, name, 2, "(dim, h)")
    check_same([alpha, delta, beta, eta], ["alpha", "delta", "beta", "eta"])
    shape = tuple(alpha.shape)
    if dim is not None and shape[0] != dim:
        raise ValueError(f"alpha must have shape (dim, h) with dim = {dim} (the last axis of x), got {shape}")
    for name, p in (("delta", delta), ("beta", beta), ("eta", eta)):
        if tuple(p.shape) != shape:
            raise ValueError(f"{name} must have the shape of alpha (dim, h) = {shape}, got {tuple(p.shape)}")
    for name, p in (("alpha", alpha), ("delta", delta)):
        if not torch.isfinite(p).all() or (p <= 0).any() or (p >= 1).any():
            raise ValueError(f"{name} must lie strictly inside (0, 1), got values in "
                             f"[{p.min().item():.3g}, {p.max().item():.3g}]")


def ema_kernel(alpha, delta, beta, eta, length: int) -> torch.Tensor:
    """K (dim, length): K_t = Σ_h η α β (1 − αδ)^t — the EMA's impulse response (powers taken in log space)."""
    check_ema_parameters(alpha, delta, beta, eta)
    check_positive_int(length, "length")
    t = torch.arange(length, device=alpha.device, dtype=alpha.dtype)
    powers = torch.exp(t * torch.log1p(-alpha * delta)[..., None])          # (dim, h, L): (1 − αδ)^t
    return ((eta * alpha * beta)[..., None] * powers).sum(1)


def ema_step(x_t, state, alpha, delta, beta, eta):
    """One token: h ← αβ x_t + (1 − αδ) h; y_t = Σ_h η h. x_t (B, dim); state (B, dim, h). Returns (y_t, state)."""
    state = alpha * beta * x_t[..., None] + (1 - alpha * delta) * state
    return (eta * state).sum(-1), state


def _recurrent(x, alpha, delta, beta, eta):
    state = x.new_zeros(x.shape[0], *alpha.shape)
    ys = []
    for t in range(x.shape[1]):
        y_t, state = ema_step(x[:, t], state, alpha, delta, beta, eta)
        ys.append(y_t)
    return torch.stack(ys, dim=1)


def causal_fft_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """y_t = Σ_{s≤t} K_{t−s} x_s along axis 1 of x (B, L, dim) with K (dim, L), zero-padded to 2L (no wrap-around)."""
    L = x.shape[1]
    n = 2 * L
    xf = torch.fft.rfft(x, n=n, dim=1)
    kf = torch.fft.rfft(kernel, n=n, dim=-1).transpose(0, 1)                # (n/2 + 1, dim)
    return torch.fft.irfft(xf * kf, n=n, dim=1)[:, :L]


def damped_ema(x, alpha, delta, beta, eta, *, backend: str = "auto") -> torch.Tensor:
    """Mega's damped EMA: h_t = α⊙β x_t + (1 − α⊙δ) ⊙ h_{t−1}, y_t = Σ_h η ⊙ h_t (zero initial state).

    Args:
        x: (batch, length, dim).
        alpha, delta: (dim, h), strictly inside (0, 1); beta, eta: (dim, h).
        backend: ``"recurrent"`` (the loop: the reference), ``"fft"`` (the causal convolution with
            K_t = Σ_h η α β (1 − αδ)^t), or ``"auto"`` (the FFT).
    Returns y: (batch, length, dim). The FFT equals the loop (tests/ssm/test_mega.py).
    """
    check_tensor(x, "x", 3, "(batch, length, dim)")
    check_choice(backend, "backend", BACKENDS)
    check_ema_parameters(alpha, delta, beta, eta, dim=x.shape[-1])
    if alpha.device != x.device:
        raise TypeError(f"alpha is on {alpha.device} but x is on {x.device}; all inputs must share a device")
    if x.shape[1] == 0:
        raise ValueError(f"x must have length >= 1, got shape {tuple(x.shape)}")
    if backend == "auto":
        backend = "fft"
    if x.shape[0] == 0:
        return x.new_zeros(x.shape)
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype     # half: compute in fp32
    params = [p.to(work) for p in (alpha, delta, beta, eta)]
    if backend == "recurrent":
        return _recurrent(x.to(work), *params).to(x.dtype)
    check_finite(x, "x", "the FFT mixes every position before the causal part is cut out, so a NaN or inf "
                         "would reach earlier outputs; backend='recurrent' stays causal and accepts it")
    return causal_fft_conv(x.to(work), ema_kernel(*params, x.shape[1])).to(x.dtype)
