"""Comparison metrics shared by the tests and ``make gpu-check``.

Following fla: a fast form is held to its reference by the *relative RMS
error* RMS(ref − out) / RMS(ref), which does not blow up on entries that
happen to be near zero the way an element-wise rtol does.
"""
from __future__ import annotations

import torch


def rel_rms(ref: torch.Tensor, out: torch.Tensor) -> float:
    """RMS(ref − out) / RMS(ref), computed in float64."""
    if ref.shape != out.shape:
        raise ValueError(f"ref and out must have the same shape, got {tuple(ref.shape)} and {tuple(out.shape)}")
    ref64, out64 = ref.detach().double(), out.detach().double()
    if not torch.isfinite(out64).all():
        return float("inf")
    denom = ref64.pow(2).mean().sqrt().item()
    err = (ref64 - out64).pow(2).mean().sqrt().item()
    return err / denom if denom > 0 else err


def assert_rel_rms(ref: torch.Tensor, out: torch.Tensor, tol: float, what: str = "output") -> None:
    err = rel_rms(ref, out)
    assert err <= tol, f"{what}: relative RMS error {err:.3e} > {tol:.1e}"
