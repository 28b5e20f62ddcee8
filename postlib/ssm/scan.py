"""Mamba's selective scan: x_t = exp(Δ_t A) x_{t−1} + Δ_t B_t u_t,  y_t = C_t·x_t (+ D u_t) (· silu(z_t)).

Shapes follow the Mamba authors' reference scan: u, delta, z (batch, dim, L); A (dim, N);
B, C (batch, N, L) (input-dependent, "selective"), (batch, groups, N, L) or (dim, N) (fixed);
D, delta_bias (dim,). Δ is optionally biased then passed through softplus. A is discretized by
ZOH, B by Euler (Δ B), as in the paper.

Backends, all equal to ``"sequential"`` (tests/ssm/test_scan.py):

* ``"sequential"``  the loop that is the definition; state (batch, dim, N). The Triton kernel
                    ``postlib.kernels.selective_scan.selective_scan_triton`` is held to it.
* ``"parallel"``    an associative scan over (a, b) pairs, (a₂, b₂)∘(a₁, b₁) = (a₂a₁, a₂b₁ + b₂),
                    depth O(log L): pairs are combined, the half-length problem is solved
                    recursively, then the odd positions are filled in. It materialises
                    (batch, dim, L, N) — fast when dim·N is small, memory-bound when large.
* ``"chunked"``     L split into chunks of T; all chunks advance in lockstep (a loop of T steps
                    over (batch, dim, L/T, N) states), chunk-final states are carried across chunks,
                    and a second T-step pass adds each chunk's incoming state. Never holds more than
                    (batch, dim, L/T, N): 2T + L/T Python steps instead of L.
* ``"triton"``      ``postlib.kernels.selective_scan`` (CUDA, or CPU under TRITON_INTERPRET=1).
* ``"auto"``        Triton on CUDA; on CPU the crossover measured in
                    postlib/bench/results/cpu_scan_crossover.json: the loop for short L, parallel while
                    batch·dim·N is small, chunked beyond (it never holds (batch, dim, L, N)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_positive_int, check_same, check_tensor

BACKENDS = ("auto", "sequential", "parallel", "chunked", "triton")
# CPU crossover (bench/results/cpu_scan_crossover.json, L = 4096, N = 16): the parallel scan wins
# while batch·dim·N is small (Python overhead dominates the loop); its (batch, dim, L, N) tensors
# make it memory-bound beyond ~2^9 states, where the chunked form (2√L + √L steps on
# (batch, dim, √L, N)) takes over and stays ahead of the loop up to the largest state measured
# (dim 512: about 2x on an idle 2-core CPU; on a heavily loaded one the two tie).
PARALLEL_MAX_STATES = 512
SEQUENTIAL_MAX_LENGTH = 48


def _check_inputs(u, delta, A, B, C, D, z, delta_bias):
    check_tensor(u, "u", 3, "(batch, dim, L)")
    bsz, dim, L = u.shape
    if L == 0:
        raise ValueError(f"u must have length >= 1, got shape {tuple(u.shape)}")
    check_tensor(delta, "delta", 3, "(batch, dim, L)")
    if delta.shape != u.shape:
        raise ValueError(f"delta must have shape (batch, dim, L) = {tuple(u.shape)} like u, got {tuple(delta.shape)}")
    check_tensor(A, "A", 2, "(dim, N)")
    if A.shape[0] != dim:
        raise ValueError(f"A must have shape (dim={dim}, N), got {tuple(A.shape)}")
    N = A.shape[1]
    for name, M in (("B", B), ("C", C)):
        check_tensor(M, name, None, "(batch, N, L), (batch, groups, N, L) or (dim, N)")
        ok = ((M.dim() == 3 and M.shape == (bsz, N, L)) or (M.dim() == 2 and M.shape == (dim, N))
              or (M.dim() == 4 and M.shape[0] == bsz and M.shape[2:] == (N, L) and dim % M.shape[1] == 0))
        if not ok:
            raise ValueError(f"{name} must have shape (batch, N, L) = {(bsz, N, L)}, (batch, groups, N, L) with groups "
                             f"dividing dim, or (dim, N) = {(dim, N)}; got {tuple(M.shape)}")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None:
            check_tensor(v, name, 1, f"(dim={dim},)")
            if v.shape[0] != dim:
                raise ValueError(f"{name} must have shape (dim={dim},), got {tuple(v.shape)}")
    if z is not None:
        check_tensor(z, "z", 3, "(batch, dim, L)")
        if z.shape != u.shape:
            raise ValueError(f"z must have shape (batch, dim, L) = {tuple(u.shape)} like u, got {tuple(z.shape)}")
    present = [(t, n) for t, n in ((u, "u"), (delta, "delta"), (A, "A"), (B, "B"), (C, "C"), (D, "D"),
                                   (z, "z"), (delta_bias, "delta_bias")) if t is not None]
    check_same([t for t, _ in present], [n for _, n in present])


def _bc_per_channel(M: torch.Tensor, dim: int) -> torch.Tensor:
    """B or C as (batch|1, dim|1, L|1, N) for broadcasting against the state (batch, dim, L, N)."""
    if M.dim() == 2:                                   # (dim, N): time-invariant
        return M[None, :, None, :]
    if M.dim() == 4:                                   # (batch, groups, N, L): each group serves dim/groups channels
        M = M.repeat_interleave(dim // M.shape[1], dim=1)
        return M.transpose(-1, -2)
    return M.transpose(1, 2)[:, None]                  # (batch, N, L) -> (batch, 1, L, N)


def prepare_delta(delta, delta_bias=None, delta_softplus=False):
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    return F.softplus(delta) if delta_softplus else delta


def pick_backend(u: torch.Tensor, N: int) -> str:
    """The ``"auto"`` rule: Triton on CUDA; on CPU by L and by the per-step state size batch·dim·N (see the constants)."""
    return choose_backend(u.shape[0], u.shape[1], u.shape[-1], N, u.is_cuda)


def choose_backend(batch: int, dim: int, length: int, N: int, on_cuda: bool) -> str:
    """``pick_backend`` from sizes alone (what a memory estimate needs before any tensor exists)."""
    if on_cuda:
        from ..kernels import triton_available
        return "triton" if triton_available() else "chunked"
    if length <= SEQUENTIAL_MAX_LENGTH:           # short sequences: the loop's few steps beat any set-up
        return "sequential"
    if batch * dim * N <= PARALLEL_MAX_STATES:
        return "parallel"
    return "chunked"


def scan_bytes(batch: int, dim: int, length: int, N: int, itemsize: int, backend: str) -> tuple[int, int]:
    """(forward, forward + backward) bytes a ``selective_scan`` call holds beyond its inputs, by form.

    sequential: one step's (batch, dim, N) state forward, every step's under autograd. parallel: the
    (batch, dim, N, L) decays, inputs and states, and the halving levels of the scan. chunked (and the
    Triton kernel, whose backward runs the chunked form): the (batch, dim, L/T, N) chunk states of one
    step forward, of every step backward. Plus (batch, dim, L) copies: Δ, the outputs, the padding.
    """
    per_step = batch * dim * N * itemsize
    signal = batch * dim * length * itemsize
    if backend == "sequential":
        return 8 * per_step + 4 * signal, 8 * length * per_step + 6 * signal
    if backend == "parallel":
        return 8 * length * per_step + 4 * signal, 16 * length * per_step + 6 * signal
    chunk = max(1, math.ceil(math.sqrt(length)))
    chunks = -(-length // chunk)
    padded = chunks * chunk
    return 14 * chunks * per_step + 8 * signal, 10 * padded * per_step + 10 * signal


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, *,
                   return_last_state=False, backend="auto", chunk_size=None):
    """Mamba's selective scan. Returns y (batch, dim, L), and the final state (batch, dim, N) if asked.

    ``chunk_size`` (an int >= 1) is the chunk length T of the ``"chunked"`` form, default ⌈√L⌉;
    the other forms have no chunks and ignore it. Every form stays causal under non-finite
    input: a NaN at step t reaches only the outputs at t and later (tests/ssm/test_scan.py).
    """
    check_choice(backend, "backend", BACKENDS)
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    if chunk_size is not None:
        check_positive_int(chunk_size, "chunk_size")
    if backend == "auto":
        backend = pick_backend(u, A.shape[1])
    if backend == "triton":
        from ..kernels.selective_scan import selective_scan_triton
        y, last = selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        return (y, last) if return_last_state else y
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    if backend == "sequential":
        y, last = _scan_sequential(u, delta, A, B, C)
    elif backend == "parallel":
        y, last = _scan_parallel(u, delta, A, B, C)
    else:
        y, last = _scan_chunked(u, delta, A, B, C, chunk_size)
    y = finish_output(y, u, D, z)
    return (y, last) if return_last_state else y


def finish_output(y, u, D, z):
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * F.silu(z)
    return y


def _scan_sequential(u, delta, A, B, C):
    """The definition, one time step at a time."""
    bsz, dim, L = u.shape
    Bt, Ct = _bc_per_channel(B, dim), _bc_per_channel(C, dim)
    x = u.new_zeros(bsz, dim, A.shape[1])
    ys = []
    for t in range(L):
        Bk = Bt[:, :, t if Bt.shape[2] > 1 else 0]
        Ck = Ct[:, :, t if Ct.shape[2] > 1 else 0]
        d = delta[:, :, t, None]
        x = torch.exp(d * A) * x + d * Bk * u[:, :, t, None]
        ys.append((x * Ck).sum(-1))
    return torch.stack(ys, -1), x


def associative_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t−1} + b_t (h_{−1} = 0) along dim −2, in O(log L) depth: a, b (..., L, N) → h (..., L, N).

    Level by level: combine neighbours (a₁,b₁),(a₂,b₂) → (a₂a₁, a₂b₁ + b₂), solve the half-length
    problem (its answers are h at the odd positions), then h_even = a_even · h_{previous odd} + b_even.
    """
    check_tensor(a, "a", None, "(..., L, N)")
    check_tensor(b, "b", None, "(..., L, N)")
    if a.dim() < 2 or b.shape != a.shape:
        raise ValueError(f"a and b must have the same shape (..., L, N), got a {tuple(a.shape)} and b {tuple(b.shape)}")
    if a.shape[-2] == 0:
        raise ValueError(f"a and b must have length L >= 1 along dim -2 (..., L, N), got shape {tuple(a.shape)}")
    return scan_last_dim(a.transpose(-1, -2), b.transpose(-1, -2)).transpose(-1, -2)


def scan_last_dim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``associative_scan`` along the last dim. With time innermost (contiguous), every level's
    even/odd slices are cheap strided views: this layout makes the CPU parallel scan ~1.6x faster."""
    L = a.shape[-1]
    if L == 0:
        raise ValueError(f"a and b must have length L >= 1 along the last dim, got shape {tuple(a.shape)}")
    if L == 1:
        return b
    if L % 2:                                           # pad with the identity element (a=1, b=0)
        a = torch.cat([a, torch.ones_like(a[..., :1])], -1)
        b = torch.cat([b, torch.zeros_like(b[..., :1])], -1)
    a0, a1 = a[..., 0::2], a[..., 1::2]
    b0, b1 = b[..., 0::2], b[..., 1::2]
    h_odd = scan_last_dim(a1 * a0, torch.addcmul(b1, a1, b0))
    h = torch.empty(b.shape, dtype=torch.result_type(b, h_odd), device=b.device)
    h[..., 1::2] = h_odd
    h[..., 0] = b0[..., 0]
    h[..., 2::2] = torch.addcmul(b0[..., 1:], a0[..., 1:], h_odd[..., :-1])
    return h[..., :L]


def _scan_parallel(u, delta, A, B, C):
    """The associative scan on (batch, dim, N, L) tensors: time innermost, see ``scan_last_dim``."""
    dim = u.shape[1]
    Bt, Ct = _bc_per_channel(B, dim), _bc_per_channel(C, dim)          # (b|1, d|1, L|1, N)
    dA = torch.exp(delta[:, :, None, :] * A[None, :, :, None])         # (batch, dim, N, L)
    dBu = (delta * u)[:, :, None, :] * Bt.transpose(-1, -2)
    h = scan_last_dim(dA, dBu)
    y = torch.linalg.vecdot(h, Ct.transpose(-1, -2), dim=-2)            # Σ_n h·C, broadcasting (b|1, d|1)
    return y, h[..., -1]


def _scan_chunked(u, delta, A, B, C, chunk_size=None):
    """Chunks in lockstep; see the module docstring. Equal to the loop in exact arithmetic."""
    bsz, dim, L = u.shape
    N = A.shape[1]
    T = max(1, int(math.ceil(math.sqrt(L)))) if chunk_size is None else chunk_size
    nc = -(-L // T)
    pad = nc * T - L
    Bt, Ct = _bc_per_channel(B, dim), _bc_per_channel(C, dim)   # (b|1, dim|1, L|1, N)
    if pad:   # Δ = 0 past the end: exp(0·A) = 1 and Δ B u = 0, so the padding leaves the state alone.
        u, delta = F.pad(u, (0, pad)), F.pad(delta, (0, pad))
        if Bt.shape[2] > 1:
            Bt = F.pad(Bt, (0, 0, 0, pad))
        if Ct.shape[2] > 1:
            Ct = F.pad(Ct, (0, 0, 0, pad))

    def chunked(M):   # (b, d, nc*T, N) -> (b, d, nc, T, N) ; constant ones stay broadcastable
        return M.unflatten(2, (nc, T)) if M.shape[2] > 1 else M[:, :, None]

    uc, dc = u.unflatten(2, (nc, T)), delta.unflatten(2, (nc, T))       # (b, d, nc, T)
    Bc, Cc = chunked(Bt), chunked(Ct)
    Ab = A[None, :, None, :]                                            # (1, d, 1, N)

    def steps(M):   # the T steps of a chunked tensor; a time-invariant one repeats
        return M.unbind(3) if M.shape[3] > 1 else [M[:, :, :, 0]] * T

    # unbind, not M[..., t] per step: the backward of T index operations would write T full-size zero
    # gradients (O(L^1.5) work); unbind's backward is one stack.
    d_steps, u_steps, B_steps, C_steps = dc.unbind(-1), uc.unbind(-1), steps(Bc), steps(Cc)
    # Pass 1: every chunk scans its own steps from a zero state, all chunks at once.
    h = u.new_zeros(bsz, dim, nc, N)
    y_local = []
    for d, u_t, B_t, C_t in zip(d_steps, u_steps, B_steps, C_steps):
        d = d[..., None]
        h = torch.exp(d * Ab) * h + (d * u_t[..., None]) * B_t
        y_local.append((h * C_t).sum(-1))
    # Carries: the state entering chunk c, from chunk c−1's local end state and its total decay.
    decay_total = torch.exp(dc.sum(-1)[..., None] * Ab)                # (b, d, nc, N)
    decays, ends = decay_total.unbind(2), h.unbind(2)
    carry = [u.new_zeros(bsz, dim, N)]
    for c in range(nc - 1):
        carry.append(decays[c] * carry[-1] + ends[c])
    last = decays[-1] * carry[-1] + ends[-1]
    carry = torch.stack(carry, 2)                                      # (b, d, nc, N)
    # Pass 2: add the carried-in state, decayed to each step: exp(A Σ_{s≤t} Δ_s) · carry.
    cum = torch.zeros_like(dc[..., 0])
    ys = []
    for y_t, d, C_t in zip(y_local, d_steps, C_steps):
        cum = cum + d
        ys.append(y_t + (torch.exp(cum[..., None] * Ab) * carry * C_t).sum(-1))
    y = torch.stack(ys, -1).flatten(2)[..., :L]
    return y, last
