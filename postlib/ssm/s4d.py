"""DSS and S4D: the diagonal simplification of S4.

Drop the low-rank term of S4's NPLR form and keep only a diagonal A = diag(λ) (complex,
in conjugate pairs, so keep N/2 and take 2·Re). With ZOH (S4D):

    Ā = exp(Δλ),   B̄ = (exp(Δλ) − 1)/λ · B,   K_l = 2 Re Σ_n C_n B̄_n Ā_n^l

— a Vandermonde matrix–vector product, O(N L), no Cauchy kernel, no Woodbury.

* S4D-Lin   λ_n = −½ + iπn
* S4D-Inv   λ_n = −½ + i (N/π)(N/(2n+1) − 1)
* S4D-Real  λ_n = −(n+1)
* DSS (Gupta et al. 2022): λ from the eigenvalues of HiPPO-LegS's normal part, the kernel
  K_l = Re Σ_n W_n (e^{λΔ} − 1)/λ · e^{λ l Δ} ("DSS-exp"). Its "DSS-softmax" variant normalises
  over the L positions, so its kernel depends on L and has no fixed-size recurrence:
  :func:`dss_softmax_kernel` is provided for the chapter, the mixer uses DSS-exp.

``vandermonde_kernel`` ≡ the recurrence (powers of Ā) in tests/ssm/test_s4d.py.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ..registry import register_mixer
from .conv import ConvSSMMixer, at_least_fp32
from .s4 import nplr_legs

S4D_INITS = ("lin", "inv", "real", "legs")


def s4d_init(N: int, kind: str = "lin") -> torch.Tensor:
    """The N/2 eigenvalues (complex128) S4D keeps; their conjugates are implied (``"real"`` keeps N)."""
    check_positive_int(N, "N")
    check_choice(kind, "kind", S4D_INITS)
    if kind == "real":
        return -(torch.arange(N, dtype=torch.float64) + 1).to(torch.complex128)
    if N % 2:
        raise ValueError(f"N must be even for complex-conjugate initialisations ({kind!r}), got {N}")
    n = torch.arange(N // 2, dtype=torch.float64)
    if kind == "lin":
        return torch.complex(torch.full_like(n, -0.5), math.pi * n)
    if kind == "inv":
        return torch.complex(torch.full_like(n, -0.5), N / math.pi * (N / (2 * n + 1) - 1))
    lam = torch.tensor(nplr_legs(N)[0])
    return lam[lam.imag >= 0][: N // 2] if (lam.imag >= 0).sum() >= N // 2 else lam[: N // 2]


def zoh_diagonal(lam: torch.Tensor, dt) -> tuple[torch.Tensor, torch.Tensor]:
    """ZOH for diagonal A with B = 1: (Ā, B̄) = (e^{Δλ}, (e^{Δλ} − 1)/λ). lam (..., N), dt (...,).

    At λ = 0 (a pure integrator, dx/dt = u) B̄ takes its limit Δ instead of 0/0; B̄ is
    computed as expm1(Δλ)/λ, accurate for small |Δλ| too.
    """
    dt_ = dt[..., None] if isinstance(dt, torch.Tensor) else dt
    dtl = lam * dt_
    Ad = torch.exp(dtl)
    zero = lam == 0
    safe = torch.where(zero, torch.ones_like(lam), lam)     # no 0/0 anywhere, so gradients stay finite too
    Bd = torch.where(zero, dt_ * torch.ones_like(lam), torch.expm1(dtl) / safe)
    return Ad, Bd


def vandermonde_kernel(C_tilde: torch.Tensor, log_Ad: torch.Tensor, L: int) -> torch.Tensor:
    """K_l = Σ_n C̃_n exp(l · log Ā_n) for l < L: (..., N) × (..., N) → (..., L) complex.

    The Vandermonde matrix V_{n,l} = Ā_n^l is formed in log space (exp of l·log Ā), not by powers.
    """
    check_positive_int(L, "L")
    l = torch.arange(L, device=log_Ad.device, dtype=log_Ad.real.dtype)
    return (C_tilde[..., :, None] * torch.exp(log_Ad[..., :, None] * l)).sum(-2)


def dss_softmax_kernel(W: torch.Tensor, lam: torch.Tensor, dt, L: int) -> torch.Tensor:
    """DSS-softmax: K_l = Re Σ_n W_n /λ_n · (e^{λΔ} − 1) · softmax_l(λ_n l Δ) (softmax over l < L; complex)."""
    dtl = lam * (dt[..., None] if isinstance(dt, torch.Tensor) else dt)
    P = dtl[..., :, None] * torch.arange(L, dtype=lam.real.dtype, device=lam.device)
    P = P - P.real.amax(-1, keepdim=True)                       # stable: softmax is shift invariant
    S = torch.exp(P) / torch.exp(P).sum(-1, keepdim=True)
    return ((W * (torch.exp(dtl) - 1) / lam)[..., :, None] * S).sum(-2).real


class DiagonalSSMMixer(ConvSSMMixer):
    """A diagonal complex SSM per channel: kernel by Vandermonde, step by elementwise recurrence."""

    output_scale = 2.0   # 2·Re for S4D (conjugate pairs); DSS uses Re

    def _diag(self):
        """(λ (H,M) complex, C̃-input factor, C (H,M) complex) of the subclass."""
        raise NotImplementedError  # pragma: no cover

    def discrete_system(self):
        lam, C = self._diag()
        Ad, Bd = zoh_diagonal(lam, self.dt())
        return Ad, Bd, C

    def kernel(self, L: int) -> torch.Tensor:
        lam, C = self._diag()
        Ad, Bd = zoh_diagonal(lam, self.dt())
        return self.output_scale * vandermonde_kernel(C * Bd, lam * self.dt()[:, None], L).real

    def _kernel_bytes(self, length, w):
        # The Vandermonde product materialises (d_model, modes, L) complex arrays: Δλ·l, its exp, C̃ times it.
        modes = self.log_neg_re.shape[-1]
        vander = self.d_model * modes * length * 2 * w
        small = 4 * self.d_model * (modes + length) * 2 * w
        return 3 * vander + small, 5 * vander + 2 * small

    def init_state(self, batch_size, device=None, dtype=None):
        lam, _ = self._diag()
        dtype = dtype or self.log_dt.dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        return torch.zeros(batch_size, *lam.shape, dtype=cdtype, device=device or self.log_dt.device)

    def _recur(self, u_t, state):
        Ad, Bd, C = self.discrete_system()
        state = Ad * state + Bd * u_t[..., None]
        return self.output_scale * (C * state).sum(-1).real, state


@register_mixer("s4d", family="ssm", causal=True,
                summary="S4D: diagonal complex SSM (S4D-Lin/Inv/Real init), ZOH, Vandermonde kernel + FFT conv.")
class S4DMixer(DiagonalSSMMixer):
    def __init__(self, d_model: int, d_state: int = 16, init: str = "lin", dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__(d_model, dt_min, dt_max)
        self.d_state = check_positive_int(d_state, "d_state")
        lam = s4d_init(d_state, init).repeat(d_model, 1)
        if init == "real":
            self.output_scale = 1.0
        self.log_neg_re = nn.Parameter(torch.log(-lam.real).float())
        self.im = nn.Parameter(lam.imag.float())
        C = torch.randn(d_model, lam.shape[-1], dtype=torch.complex64) * (0.5 ** 0.5)
        self.C = nn.Parameter(torch.view_as_real(C))

    def _diag(self):
        lam = torch.complex(-torch.exp(at_least_fp32(self.log_neg_re)), at_least_fp32(self.im))
        return lam, torch.view_as_complex(at_least_fp32(self.C))


@register_mixer("dss", family="ssm", causal=True,
                summary="DSS (DSS-exp): diagonal SSM with HiPPO-LegS eigenvalues, kernel Re Σ W (e^{λΔ}−1)/λ e^{λlΔ}.")
class DSSMixer(DiagonalSSMMixer):
    output_scale = 1.0

    def __init__(self, d_model: int, d_state: int = 16, dt_min: float = 1e-3, dt_max: float = 1e-1):
        super().__init__(d_model, dt_min, dt_max)
        self.d_state = check_positive_int(d_state, "d_state")
        lam = torch.tensor(nplr_legs(d_state)[0]).repeat(d_model, 1)
        self.log_neg_re = nn.Parameter(torch.log(-lam.real).float())
        self.im = nn.Parameter(lam.imag.float())
        W = torch.randn(d_model, d_state, dtype=torch.complex64) * (0.5 ** 0.5)
        self.W = nn.Parameter(torch.view_as_real(W))

    def _diag(self):
        lam = torch.complex(-torch.exp(at_least_fp32(self.log_neg_re)), at_least_fp32(self.im))
        return lam, torch.view_as_complex(at_least_fp32(self.W))
