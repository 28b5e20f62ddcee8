"""Small, fast computations behind the chapter's and the dashboard's state-space animations.

``state_trajectories`` runs the same diagonal SSM twice over one input: once time-invariant
(S4D: one Δ for every step) and once selective (Mamba: Δ_t depends on the input). It records
every state so a figure can show what each model keeps and what it forgets.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_int

INPUTS = ("spikes", "sine", "steps", "noise")


def demo_input(kind: str, L: int, seed: int = 0) -> np.ndarray:
    """Inputs for the hidden-state animation: "spikes" (a few tokens that matter among small noise), "sine", "steps", "noise"."""
    check_choice(kind, "kind", INPUTS)
    check_positive_int(L, "L")
    rng = np.random.default_rng(seed)
    t = np.arange(L)
    if kind == "spikes":
        u = 0.05 * rng.standard_normal(L)
        u[rng.choice(L, size=max(1, L // 25), replace=False)] = rng.choice([-1.0, 1.0], size=max(1, L // 25))
        return u
    if kind == "sine":
        return np.sin(2 * np.pi * t / max(L / 3, 1))
    if kind == "steps":
        return np.repeat(rng.uniform(-1, 1, 6), -(-L // 6))[:L]
    return rng.standard_normal(L) * 0.5


def state_trajectories(u, N: int = 8, dt: float = 0.1, selectivity: float = 8.0) -> dict:
    """States of an LTI and a selective diagonal SSM with A_n = −(n+1) (S4D-Real), B = 1, C = 1/N.

    LTI (S4D):        x_t = exp(Δ A) x_{t−1} + Δ u_t,            Δ fixed.
    Selective (S6):   Δ_t = Δ · softplus(selectivity · (|u_t| − 0.3)) / softplus(0)
                      — big inputs get a big step (reset and write), small ones a tiny step (hold).
    Returns {"lti": (L, N), "selective": (L, N), "delta": (L,), "y_lti": (L,), "y_selective": (L,)}.
    """
    u = np.asarray(u, dtype=float)
    check_positive_int(N, "N")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    A = -(np.arange(N) + 1.0)
    softplus = lambda x: np.logaddexp(0.0, x)
    delta_sel = dt * softplus(selectivity * (np.abs(u) - 0.3)) / softplus(0.0)
    out = {}
    for name, deltas in (("lti", np.full_like(u, dt)), ("selective", delta_sel)):
        x = np.zeros(N)
        xs = np.empty((len(u), N))
        for t, (d, ut) in enumerate(zip(deltas, u)):
            x = np.exp(d * A) * x + d * ut
            xs[t] = x
        out[name] = xs
        out["y_" + name] = xs.mean(1)
    out["delta"] = delta_sel
    return out


def relative_change_on_quiet_steps(states, u, threshold: float = 0.3) -> float:
    """Mean of |x_t − x_{t−1}|₁ / |x_{t−1}|₁ over steps whose input is small: how much a quiet step rewrites the state."""
    states, u = np.asarray(states), np.asarray(u)
    quiet = np.abs(u[1:]) < threshold
    rel = np.abs(np.diff(states, axis=0)).sum(1) / (np.abs(states[:-1]).sum(1) + 1e-12)
    return float(rel[quiet].mean())
