"""S4: HiPPO-LegS as a normal-plus-low-rank matrix, and its convolution kernel via a Cauchy kernel.

The three views of one SSM (Gu, Goel & Ré 2022), bilinear-discretized:

* recurrent   x_k = Ā x_{k−1} + B̄ u_k,  y_k = C x_k          (:func:`ssm_recurrent`)
* convolution y = K * u with K_k = C Ā^k B̄                  (:func:`s4_kernel_naive`: powers of Ā)
* generating function  K̂(z) = Σ_k K_k z^k = C̃ (I − Ā z)⁻¹ B̄, C̃ = C (I − Ā^L),
  evaluated at the L roots of unity, then an inverse FFT     (:func:`s4_kernel`)

Why NPLR: HiPPO-LegS is not diagonalizable stably (its eigenvectors have entries
exponentially large in N), but A + P Pᵀ with P_n = √(n + ½) is −½ I plus a skew-symmetric
matrix: *normal*, so unitarily diagonalizable, A = V (Λ − P̃ P̃*) V*. In that basis
(I − Āz)⁻¹B̄ = 2/(1+z) · (g(z) − Λ + P̃P̃*)⁻¹ B̃ with g(z) = (2/Δ)(1−z)/(1+z); Woodbury turns
the rank-1 correction into four Cauchy sums Σ_n a_n b_n / (g − λ_n), O(N L) in all instead of
the O(N² L) (or N³ log L) of powers of Ā.

``s4_kernel`` ≡ ``s4_kernel_naive`` and convolution ≡ recurrence: tests/ssm/test_s4.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._checks import check_number, check_positive_int
from ..registry import register_mixer
from .conv import ConvSSMMixer, at_least_fp32
from .hippo import hippo


def nplr_legs(N: int):
    """HiPPO-LegS in normal-plus-low-rank form, in the eigenbasis of its normal part.

    Returns complex128 numpy arrays ``(Lambda, P, B, V)`` such that
    A = V (diag(Lambda) − P P*) V*  with  P = V* p, B = V* b  (p_n = √(n+½), b_n = √(2n+1)).
    """
    check_positive_int(N, "N")
    A, b = hippo("legs", N)
    p = np.sqrt(np.arange(N) + 0.5)
    S = A + np.outer(p, p)                     # = −½ I + skew-symmetric
    skew = S + 0.5 * np.eye(N)
    # i·skew is Hermitian: eigh gives real w and a unitary V with skew = −i V diag(w) V*.
    w, V = np.linalg.eigh(1j * skew)
    Lambda = -0.5 - 1j * w
    return Lambda, V.conj().T @ p, V.conj().T @ b, V


def bilinear_dense(Lambda, P, B, dt):
    """Ā, B̄ (bilinear) of the DPLR system A = diag(Λ) − P P* (dense, for the naive forms)."""
    A = torch.diag_embed(Lambda) - P[..., :, None] * P.conj()[..., None, :]
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    dt = dt[..., None, None] if isinstance(dt, torch.Tensor) else dt
    left = eye - dt / 2 * A
    Ad = torch.linalg.solve(left, eye + dt / 2 * A)
    Bd = torch.linalg.solve(left, dt * B[..., :, None])[..., 0]
    return Ad, Bd


def s4_kernel_naive(Ad: torch.Tensor, Bd: torch.Tensor, C: torch.Tensor, L: int) -> torch.Tensor:
    """K_k = C Ā^k B̄ for k < L, by repeated multiplication: the definition. (..., N, N), (..., N), (..., N) → (..., L)."""
    check_positive_int(L, "L")
    out, x = [], Bd
    for _ in range(L):
        out.append((C * x).sum(-1))
        x = (Ad @ x[..., None])[..., 0]
    return torch.stack(out, -1)


def cauchy(v: torch.Tensor, g: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """The Cauchy kernel Σ_n v_n / (g_j − λ_n): v (..., N), nodes g (L,) or (..., L), λ (..., N) → (..., L).

    Materialises (..., L, N); the S4 paper's custom kernel avoids that, the math is the same.
    """
    return (v[..., None, :] / (g[..., :, None] - lam[..., None, :])).sum(-1)


def _check_dt(dt):
    """Δ of the bilinear rule: finite and > 0 (g(z) = (2/Δ)(1−z)/(1+z) divides by it)."""
    if isinstance(dt, torch.Tensor):
        if not bool(torch.isfinite(dt).all()) or not bool((dt > 0).all()):
            raise ValueError(f"dt must be finite and > 0 in every channel, got min {dt.min().item()}, "
                             f"max {dt.max().item()}")
        return dt
    return check_number(dt, "dt", positive=True)


def s4_kernel(Lambda, P, B, C, dt, L: int) -> torch.Tensor:
    """The S4 convolution kernel K (…, L) of the bilinear DPLR system (Λ − P P*, B, C), via Cauchy + Woodbury.

    ``C`` here is the *output* matrix of the recurrence; C̃ = C (I − Ā^L) is formed inside,
    so the result equals :func:`s4_kernel_naive` exactly (not only up to the truncation).
    Shapes: Lambda, P, B, C (..., N) complex; dt (...,) real or a float, finite and > 0.
    """
    check_positive_int(L, "L")
    dt = _check_dt(dt)
    Ad, _ = bilinear_dense(Lambda, P, B, dt)
    C_tilde = C - (C[..., None, :] @ torch.linalg.matrix_power(Ad, L))[..., 0, :]
    j = torch.arange(L, dtype=Lambda.real.dtype, device=Lambda.device)
    z = torch.exp(-2j * math.pi * j / L)                       # the L roots of unity
    dt_ = dt[..., None] if isinstance(dt, torch.Tensor) else dt
    at_minus_one = (L % 2 == 0)
    if at_minus_one:   # z = −1 makes 2/(1+z) and g(z) infinite; their product has the finite limit Δ/2.
        z = z.clone()
        z[L // 2] = 0.0
    g = (2 / dt_) * (1 - z) / (1 + z)                          # (..., L)
    Pc = P.conj()
    # Woodbury: (g − Λ + P P*)⁻¹ = R − R P (1 + P* R P)⁻¹ P* R, R = diag(1/(g − λ)).
    k00 = cauchy(C_tilde * B, g, Lambda)
    k01 = cauchy(C_tilde * P, g, Lambda)
    k10 = cauchy(Pc * B, g, Lambda)
    k11 = cauchy(Pc * P, g, Lambda)
    K_hat = 2 / (1 + z) * (k00 - k01 * k10 / (1 + k11))
    if at_minus_one:
        K_hat[..., L // 2] = (dt_ / 2 if isinstance(dt_, float) else dt_[..., 0] / 2) * (C_tilde * B).sum(-1)
    return torch.fft.ifft(K_hat, n=L, dim=-1)


@register_mixer("s4", family="ssm", causal=True,
                summary="S4: HiPPO-LegS in NPLR form, kernel by Cauchy + Woodbury + iFFT; step() is the bilinear recurrence.")
class S4Mixer(ConvSSMMixer):
    """One S4 layer: H = d_model independent SISO SSMs (N states each), y = K * u + D u, GELU, Linear.

    Parameters in the NPLR eigenbasis: Λ (log of −Re kept so Re Λ < 0), P, B, C (complex), log Δ per channel.
    ``low_rank=False`` drops the correction: P is a zero buffer, so A = diag(Λ) — the same layer, code and
    initialisation without the "plus low rank" (the ablation behind "the NPLR correction barely matters").
    """

    def __init__(self, d_model: int, d_state: int = 16, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 low_rank: bool = True):
        super().__init__(d_model, dt_min, dt_max)
        self.d_state = check_positive_int(d_state, "d_state")
        Lambda, P, B, _ = nplr_legs(d_state)
        H = d_model
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.complex128)
        self.log_neg_re = nn.Parameter(torch.log(-t(Lambda).real).repeat(H, 1).float())
        self.im = nn.Parameter(t(Lambda).imag.repeat(H, 1).float())
        self.low_rank = bool(low_rank)
        P = torch.view_as_real(t(P)).repeat(H, 1, 1).float()
        if self.low_rank:
            self.P = nn.Parameter(P)
        else:
            self.register_buffer("P", torch.zeros_like(P))
        self.B = nn.Parameter(torch.view_as_real(t(B)).repeat(H, 1, 1).float())
        C = torch.randn(H, d_state, dtype=torch.complex64) * (0.5 / math.sqrt(d_state))
        self.C = nn.Parameter(torch.view_as_real(C))

    def _ssm(self):
        """(Λ, P, B, C) complex, in at least complex64 whatever the layer's dtype (no complex half ops)."""
        Lambda = torch.complex(-torch.exp(at_least_fp32(self.log_neg_re)), at_least_fp32(self.im))
        P, B, C = (torch.view_as_complex(at_least_fp32(p)) for p in (self.P, self.B, self.C))
        return Lambda, P, B, C

    def kernel(self, L: int) -> torch.Tensor:
        Lambda, P, B, C = self._ssm()
        return s4_kernel(Lambda, P, B, C, self.dt(), L).real

    def _kernel_bytes(self, length, w):
        # The Cauchy sums materialise (d_model, L, N) complex arrays (two at a time forward, all four
        # sums' worth backward); Ā^L takes log2(L) squarings of (d_model, N, N) matrices, which the
        # backward keeps.
        H, N, cw = self.d_model, self.d_state, 2 * w
        squarings = max(1, math.ceil(math.log2(length))) if length > 1 else 1
        cauchy, per_position, dense = H * length * N * cw, H * length * cw, H * N * N * cw
        return (2 * cauchy + 12 * per_position + 8 * dense,
                10 * cauchy + 24 * per_position + (12 + 2 * squarings) * dense)

    def discrete_system(self):
        """(Ā (H,N,N), B̄ (H,N), C (H,N)) complex: what ``step`` runs."""
        Lambda, P, B, C = self._ssm()
        Ad, Bd = bilinear_dense(Lambda, P, B, self.dt())
        return Ad, Bd, C

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.C.device
        dtype = dtype or self.C.dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return torch.zeros(batch_size, self.d_model, self.d_state, dtype=cdtype, device=device)

    def _recur(self, u_t, state):
        Ad, Bd, C = self.discrete_system()
        state = (Ad @ state[..., None])[..., 0] + Bd * u_t[..., None]
        return (C * state).sum(-1).real, state
