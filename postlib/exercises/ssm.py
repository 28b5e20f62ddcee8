"""Exercises of the state-space chapters (chapters/02_ssm): the function checkers.

Each calls the learner's function on float64 inputs it makes (awkward sizes included), compares with
an independent reference (postlib's own is switched off while the learner's code runs), and reports
✅/❌ with a hint that never gives the answer away. The conceptual questions (numbers by hand,
predictions, multiple choices) are in :mod:`postlib.exercises.ssm_questions`.

==============================  ==============================================================
checker                         the learner writes
==============================  ==============================================================
check_bilinear                  ``fn(A, B, dt) -> (Abar, Bbar)``        numpy (N, N), (N,)
check_zoh_diagonal              ``fn(lam, dt) -> (Abar, Bbar)``         complex torch (N,), B = 1
check_hippo_legs                ``fn(N) -> (A, B)``                      numpy float64
check_legs_step                 ``fn(c, f_k, k, A, B) -> c_k``          one online LegS update
check_diagonal_kernel           ``fn(a, b, c, L) -> K``  with conv(K, u) ≡ the recurrence
check_woodbury_solve            ``fn(g, lam, p, q, b) -> x``  (g − diag(λ) + p qᴴ) x = b in O(N)
check_scan_step                 ``fn(x, u_t, delta_t, A, B_t, C_t) -> (x_new, y_t)``
check_combine                   ``fn((a1, b1), (a2, b2)) -> (a, b)``     the scan's associative operator
check_causal_conv1d             ``fn(x, weight, bias) -> y``            Mamba's depthwise causal conv
check_masked_accuracy           ``fn(logits, targets) -> float``        accuracy where targets != −100
check_copy_targets              ``fn(tokens, n_colors) -> colours``     the selective-copying answer
==============================  ==============================================================
"""
from __future__ import annotations

import numpy as np
import torch

from ..ssm.discretize import discretize
from ..ssm.hippo import hippo
from ..ssm.s4d import zoh_diagonal
from .core import Mismatch, exercise, expect_tensor


def _pair(out, what):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Mismatch(f"{what} should return a pair (two values), got {type(out).__name__}.")
    return out


def _same(a, b, tol=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- 1. bilinear

@exercise(points=2, difficulty=2, minutes=15, title="bilinear discretization",
          forbid=["scipy.signal.cont2discrete"])
def check_bilinear(fn):
    rng = np.random.default_rng(0)
    for N, dt in ((1, 0.1), (3, 0.5), (7, 0.01)):
        A = rng.standard_normal((N, N)) - np.eye(N)
        B = rng.standard_normal(N)
        Ad, Bd = _pair(fn(A.copy(), B.copy(), dt), "fn(A, B, dt)")
        ref_A, ref_B = discretize(A, B, dt, "bilinear")
        if not _same(Ad, ref_A):
            if _same(Ad, np.eye(N) + dt * A) or _same(Ad, np.linalg.inv(np.eye(N) - dt * A)):
                raise Mismatch("that Ā is a one-sided Euler rule: bilinear averages the slopes at both ends of the step.")
            raise Mismatch(f"Ā differs for N={N}, Δ={dt}: solve x1 − x0 = Δ(A(x0 + x1)/2 + Bu) for x1, then read off "
                           "the coefficient of x0.")
        if not _same(Bd, ref_B):
            raise Mismatch(f"Ā is right but B̄ differs (N={N}): which matrix multiplies Δ B after solving for x1?")


# --------------------------------------------------------------------------- 2. ZOH, diagonal

@exercise(points=2, difficulty=2, minutes=10, title="ZOH for a diagonal A")
def check_zoh_diagonal(fn):
    g = torch.Generator().manual_seed(1)
    for N, dt in ((1, 0.3), (5, 0.05), (16, 1.0)):
        lam = torch.complex(-torch.rand(N, generator=g, dtype=torch.float64) - 0.1,
                            torch.randn(N, generator=g, dtype=torch.float64) * 3)
        Ad, Bd = _pair(fn(lam.clone(), dt), "fn(lam, dt)")
        ref_A, ref_B = zoh_diagonal(lam, dt)
        if not _same(Ad, ref_A):
            raise Mismatch("Ā differs: for ZOH, the state decays exactly over one step — which function of Δλ is that?")
        if not _same(Bd, ref_B):
            if _same(Bd, dt * torch.ones_like(lam)):
                raise Mismatch("Δ·B is the Euler rule for B (Mamba's choice); ZOH integrates e^{λ(Δ−s)} over the step.")
            raise Mismatch("B̄ differs: integrate e^{λ(Δ−s)} · B from s = 0 to Δ (with B = 1).")


# --------------------------------------------------------------------------- 3. HiPPO-LegS

@exercise(points=3, difficulty=3, minutes=20, title="HiPPO-LegS matrices")
def check_hippo_legs(fn):
    for N in (1, 2, 5, 12):
        A, B = _pair(fn(N), f"fn({N})")
        ref_A, ref_B = hippo("legs", N)
        A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float).reshape(-1)
        if A.shape != (N, N) or B.shape != (N,):
            raise Mismatch(f"for N={N} expected A of shape ({N}, {N}) and B of shape ({N},), got {A.shape}, {B.shape}.")
        if not _same(np.diag(A), np.diag(ref_A)):
            raise Mismatch("the diagonal is off: it comes from the −(1/t) c_n term *and* the n·P_n part of the identity.")
        if not _same(A, ref_A):
            if _same(A, ref_A.T):
                raise Mismatch("transposed: c_n can only depend on coefficients of lower degree k ≤ n.")
            raise Mismatch(f"the off-diagonal entries differ for N={N}: check signs and the square roots.")
        if not _same(B, ref_B):
            raise Mismatch("B differs: it is g_n evaluated at the newest point, where P_n(1) = 1.")


# --------------------------------------------------------------------------- 3b. one online LegS step

@exercise(points=2, difficulty=2, minutes=15, title="one online LegS update")
def check_legs_step(fn):
    """``fn(c, f_k, k, A, B)``: the LegS coefficients after the k-th sample (k = 1, 2, ...), bilinear with step 1/k."""
    rng = np.random.default_rng(6)
    for N in (1, 3, 8):
        A, B = hippo("legs", N)
        f = rng.standard_normal(23)
        c = np.zeros(N)
        for k in range(1, len(f) + 1):
            out = np.asarray(fn(c.copy(), float(f[k - 1]), k, A.copy(), B.copy()), dtype=float).reshape(-1)
            if out.shape != (N,):
                raise Mismatch(f"c_k should have shape (N,) = ({N},), got {out.shape}.")
            left, right = np.eye(N) - A / (2 * k), np.eye(N) + A / (2 * k)
            want = np.linalg.solve(left, right @ c + B * f[k - 1] / k)
            if not _same(out, want):
                if _same(out, np.linalg.solve(np.eye(N) - A / 2, (np.eye(N) + A / 2) @ c + B * f[k - 1])):
                    raise Mismatch("the step is Δ/t = 1/k, not 1: LegS's ODE carries a 1/t in front of A c + B f.")
                if _same(out, c + (A @ c + B * f[k - 1]) / k):
                    raise Mismatch("that is forward Euler; the chapter's update is bilinear (average both ends).")
                raise Mismatch(f"c_k differs at step k = {k} (N = {N}): discretize dc/dt = (A c + B f)/t with the "
                               "bilinear rule and step 1/k.")
            c = want


# --------------------------------------------------------------------------- 4. one selective-scan step

@exercise(points=2, difficulty=2, minutes=10, title="one selective-scan step")
def check_scan_step(fn):
    g = torch.Generator().manual_seed(2)
    for b, d, N in ((1, 1, 1), (2, 3, 5), (1, 7, 16)):
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
        x, u, delta = r(b, d, N), r(b, d), torch.rand(b, d, generator=g, dtype=torch.float64)
        A, B, C = -torch.rand(d, N, generator=g, dtype=torch.float64), r(b, N), r(b, N)
        out = _pair(fn(x.clone(), u, delta, A, B, C), "fn(x, u_t, delta_t, A, B_t, C_t)")
        x_ref = torch.exp(delta[..., None] * A) * x + delta[..., None] * B[:, None] * u[..., None]
        y_ref = (x_ref * C[:, None]).sum(-1)
        x_new, y = (torch.as_tensor(o) for o in out)
        if x_new.shape != x_ref.shape:
            raise Mismatch(f"the new state should have shape (batch, dim, N) = {tuple(x_ref.shape)}, got {tuple(x_new.shape)}.")
        if not _same(x_new, x_ref):
            if _same(x_new, torch.exp(A) * x + delta[..., None] * B[:, None] * u[..., None]):
                raise Mismatch("the decay must depend on the step: Ā = exp(Δ_t A), not exp(A).")
            raise Mismatch("the new state differs: ZOH for A (a decay), Euler for B (Δ_t B_t u_t).")
        if y.shape != y_ref.shape or not _same(y, y_ref):
            raise Mismatch(f"the state is right; y_t should be C_t · x_t summed over N, shape {tuple(y_ref.shape)}.")


# --------------------------------------------------------------------------- 5. conv ≡ recurrence, diagonal A

@exercise(points=2, difficulty=2, minutes=15, title="convolution kernel of a diagonal SSM")
def check_diagonal_kernel(fn):
    g = torch.Generator().manual_seed(3)
    for N, L in ((1, 1), (4, 13), (8, 64)):
        a = torch.rand(N, generator=g, dtype=torch.float64) * 0.95
        b, c = torch.randn(N, generator=g, dtype=torch.float64), torch.randn(N, generator=g, dtype=torch.float64)
        K = torch.as_tensor(fn(a, b, c, L))
        if K.shape != (L,):
            raise Mismatch(f"K should have shape (L,) = ({L},), got {tuple(K.shape)}.")
        u = torch.randn(L, generator=g, dtype=torch.float64)
        x, ys = torch.zeros(N, dtype=torch.float64), []
        for t in range(L):        # the recurrence x_t = a x_{t−1} + b u_t, y_t = c·x_t
            x = a * x + b * u[t]
            ys.append((c * x).sum())
        y_rec = torch.stack(ys)
        y_conv = torch.stack([(K[: t + 1].flip(0) * u[: t + 1]).sum() for t in range(L)])
        if not _same(y_conv, y_rec):
            if _same(K, torch.stack([(c * a ** (l + 1) * b).sum() for l in range(L)])):
                raise Mismatch("off by one power: the newest input enters the state once, without a decay.")
            raise Mismatch(f"conv(K, u) differs from the recurrence (N={N}, L={L}): unroll x_t by hand for t = 0, 1, 2.")


# --------------------------------------------------------------------------- 5b. Woodbury for diagonal + rank one

LINALG = ["torch.linalg.solve", "torch.linalg.inv", "torch.inverse", "torch.linalg.lstsq", "torch.linalg.pinv",
          "numpy.linalg.solve", "numpy.linalg.inv", "numpy.linalg.lstsq", "numpy.linalg.pinv", "scipy.linalg.solve",
          "scipy.linalg.inv"]


@exercise(points=3, difficulty=3, minutes=20, title="Woodbury for diagonal plus rank one", forbid=LINALG)
def check_woodbury_solve(fn):
    """``fn(g, lam, p, q, b)``: x with (g·I − diag(λ) + p qᴴ) x = b, complex (N,) vectors and a complex g,
    using only elementwise operations and sums (no matrix solve: that is the point)."""
    g_ = torch.Generator().manual_seed(7)
    c = lambda n: torch.complex(torch.randn(n, generator=g_, dtype=torch.float64),
                                torch.randn(n, generator=g_, dtype=torch.float64))
    for N in (1, 4, 17):
        lam = torch.complex(-torch.rand(N, generator=g_, dtype=torch.float64) - 0.2,
                            torch.randn(N, generator=g_, dtype=torch.float64) * 3)
        p, q, b = c(N), c(N), c(N)
        g = complex(0.3, 1.7)
        x = expect_tensor(torch.as_tensor(fn(g, lam, p, q, b)), "x", (N,))
        M = g * torch.eye(N, dtype=torch.complex128) - torch.diag(lam) + p[:, None] * q.conj()[None, :]
        if not torch.allclose(M @ x.to(torch.complex128), b, atol=1e-9, rtol=1e-9):
            M_noconj = g * torch.eye(N, dtype=torch.complex128) - torch.diag(lam) + p[:, None] * q[None, :]
            if torch.allclose(M_noconj @ x.to(torch.complex128), b, atol=1e-9, rtol=1e-9):
                raise Mismatch("you solved with p qᵀ: the rank-one term is p qᴴ, so q enters conjugated.")
            M_minus = g * torch.eye(N, dtype=torch.complex128) - torch.diag(lam) - p[:, None] * q.conj()[None, :]
            if torch.allclose(M_minus @ x.to(torch.complex128), b, atol=1e-9, rtol=1e-9):
                raise Mismatch("the sign of the rank-one correction is flipped: the matrix is g − Λ *plus* p qᴴ.")
            raise Mismatch(f"(g − Λ + p qᴴ) x ≠ b for N = {N}: start from R = 1/(g − λ) elementwise, then correct "
                           "R b along R p with the scalar 1 + qᴴ R p.")


# --------------------------------------------------------------------------- 6. the scan's combine

@exercise(points=3, difficulty=3, minutes=15, title="the scan's associative combine")
def check_combine(fn):
    g = torch.Generator().manual_seed(4)
    r = lambda: (torch.rand(3, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64))
    e1, e2, e3 = r(), r(), r()
    ab = _pair(fn(e1, e2), "fn((a1, b1), (a2, b2))")
    x = torch.randn(3, generator=g, dtype=torch.float64)
    applied = e2[0] * (e1[0] * x + e1[1]) + e2[1]          # first e1, then e2
    if not _same(ab[0] * x + ab[1], applied):
        if _same(ab[0] * x + ab[1], e1[0] * (e2[0] * x + e2[1]) + e1[1]):
            raise Mismatch("the order is swapped: (a1, b1) is the earlier step and acts first.")
        raise Mismatch("the composite map x ↦ a x + b must equal applying step 1, then step 2.")
    left = fn(fn(e1, e2), e3)
    right = fn(e1, fn(e2, e3))
    if not (_same(left[0], right[0]) and _same(left[1], right[1])):
        raise Mismatch("your operator is not associative, so a tree cannot regroup it.")


# --------------------------------------------------------------------------- 6b. the causal depthwise convolution

@exercise(points=2, difficulty=2, minutes=15, title="Mamba's causal depthwise conv1d")
def check_causal_conv1d(fn):
    """``fn(x, weight, bias)``: x (batch, dim, L), weight (dim, k), bias (dim,) → y (batch, dim, L) with
    y[:, c, t] = bias[c] + Σ_j weight[c, j] · x[:, c, t − (k − 1) + j], zeros before the start (causal)."""
    g = torch.Generator().manual_seed(8)
    for b, d, L, k in ((1, 1, 1, 1), (2, 3, 7, 4), (1, 5, 13, 3)):
        x = torch.randn(b, d, L, generator=g, dtype=torch.float64)
        w = torch.randn(d, k, generator=g, dtype=torch.float64)
        bias = torch.randn(d, generator=g, dtype=torch.float64)
        y = expect_tensor(fn(x.clone(), w.clone(), bias.clone()), "y", (b, d, L)).double()
        padded = torch.cat([x.new_zeros(b, d, k - 1), x], dim=-1)
        want = torch.stack([(padded[..., t:t + k] * w).sum(-1) for t in range(L)], -1) + bias[:, None]
        if not torch.allclose(y, want, atol=1e-10):
            flipped = torch.stack([(padded[..., t:t + k] * w.flip(-1)).sum(-1) for t in range(L)], -1) + bias[:, None]
            if torch.allclose(y, flipped, atol=1e-10):
                raise Mismatch("the kernel is reversed: weight[:, -1] multiplies the newest input x_t (PyTorch's "
                               "Conv1d correlates, it does not flip).")
            if L > 1 and torch.allclose(y[..., 0], want[..., 0], atol=1e-10):
                raise Mismatch("position 0 is right, a later one is not: does output t see inputs t − k + 1 … t?")
            raise Mismatch(f"y differs for x {tuple(x.shape)}, kernel width {k}: pad k − 1 zeros on the left only, "
                           "so that no output sees a future input, and add the bias.")


# --------------------------------------------------------------------------- 7. accuracy on the answer positions

@exercise(points=1, difficulty=1, minutes=5, title="accuracy on the scored positions")
def check_masked_accuracy(fn):
    from ..train import masked_accuracy
    g = torch.Generator().manual_seed(5)
    for b, L, V in ((1, 1, 3), (4, 13, 6), (8, 29, 10)):
        logits = torch.randn(b, L, V, generator=g, dtype=torch.float64)
        targets = torch.randint(0, V, (b, L), generator=g)
        targets[torch.rand(b, L, generator=g) < 0.6] = -100
        targets[0, -1] = int(logits[0, -1].argmax())          # at least one scored (and correct) position
        out = float(fn(logits, targets))
        ref = masked_accuracy(logits, targets)
        if abs(out - ref) > 1e-6:          # masked_accuracy averages in float32
            everywhere = (logits.argmax(-1) == targets).double().mean().item()
            if abs(out - everywhere) < 1e-6:
                raise Mismatch("you average over every position: only positions whose target is not −100 are scored.")
            raise Mismatch(f"accuracy differs for logits {tuple(logits.shape)}: compare argmax over the vocabulary with "
                           "the target, on the scored positions only.")


# --------------------------------------------------------------------------- 8. the selective-copying answer

@exercise(points=1, difficulty=1, minutes=10, title="what selective copying asks for")
def check_copy_targets(fn):
    """``fn(tokens, n_colors)``: tokens (length,) of one selective-copying input (0 = noise, 1..n_colors = colours,
    n_colors + 1 = separator, then blanks); return the colours before the separator, in order (a 1-D tensor)."""
    from ..tasks import selective_copying
    for n, length, memorize, colors in ((3, 5, 1, 2), (4, 16, 4, 4), (3, 40, 7, 9)):
        inputs, targets, _ = selective_copying(n, length, memorize, colors, seed=length)
        for tokens, target in zip(inputs, targets):
            out = torch.as_tensor(fn(tokens.clone(), colors)).reshape(-1)
            want = target[target != -100]
            if out.shape != want.shape or not torch.equal(out.long(), want):
                if out.numel() == length and torch.equal(out.long(), tokens[:length]):
                    raise Mismatch("keep only the coloured tokens: noise (0) is not part of the answer.")
                if out.shape == want.shape and torch.equal(out.long().sort().values, want.sort().values):
                    raise Mismatch("the right colours in the wrong order: keep the order in which they arrived.")
                raise Mismatch(f"for {memorize} colours among {length} tokens the answer differs: which token ids are "
                               "colours, and where does the part to copy end?")
