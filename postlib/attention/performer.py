"""Performer / FAVOR+ (Choromanski et al. 2021): random features for the softmax kernel.

The softmax kernel SM(x, y) = exp(xᵀy) has two random-feature estimators
(ω ~ N(0, I_d), m features, Lemma 1 and Eq. 3 of the paper):

    trigonometric  φ(x) = exp(|x|²/2)/√m · [sin(ωᵢᵀx), cos(ωᵢᵀx)]ᵢ     (2m features)
    positive       φ(x) = exp(−|x|²/2)/√m · [exp(ωᵢᵀx)]ᵢ              (m features, FAVOR+)

Both are unbiased, E[φ(x)ᵀφ(y)] = exp(xᵀy), with (Lemma 2)

    MSE_positive = exp(|x+y|²) SM(x,y)² (1 − exp(−|x+y|²)) / m,
    MSE_trig     = exp(|x+y|²) SM(x,y)⁻² (1 − exp(−|x−y|²))² / (2m):

the trig error is largest where SM is small (most entries of an attention map),
the positive one vanishes there; both grow with e^{|x+y|²}, i.e. with the norms.
Orthogonal ω's (blocks of a random rotation, rows rescaled to chi-distributed
norms) keep each ω Gaussian and lower the variance (§2.4).

Attention at the usual 1/√d temperature is SM(q/d^¼, k/d^¼). Writing the
positive features as exponentials of *logits*, φ(q)_r ∝ e^{a_r}, φ(k_j)_r ∝ e^{b_jr}
(``favor_logits``), the estimated weight of key j for query i is Σ_r e^{a_ir + b_jr}.

**Numerical stability.** Raw features under- or overflow at large norms (q, k ×16:
every feature of a query can be e^{−300} next to its keys'). Shifts that cancel
in the normalisation fix it, as the paper's implementation does with a maximum
per query for the queries and a maximum for the keys; ours are exact and causal:

* keys: a per-feature maximum c_r over the keys seen so far (over all keys when
  non-causal; a *running* maximum when causal, so no key sees a later one), with
  the state rescaled by e^{c_old − c_new} when c grows;
* queries: d_i = max_r (a_ir + c_r), so the largest term of query i is e⁰ = 1.

Every term is then e^{(≤ 0)} and the denominator is ≥ 1: the output stays a
weighted mean of v at any scale. (The paper's code subtracts one maximum over
all keys and adds a small constant to every feature: the first is not causal,
the second changes the kernel.) The 1/m of φ(q)ᵀφ(k) cancels in the ratio and
is dropped, so ``eps`` (added to the denominator) never dominates.

Forms: ``performer_reference`` is the definition — the weights Σ_r e^{a_ir+b_jr}
normalised over keys, computed from their logarithms (an (L_q × L_k) matrix);
non-causal: the stabilised features through ``linear_attention_features``;
causal ``"recurrent"``: the rescaled-state RNN (``favor_step``); causal
``"chunked"``: exact weights inside a chunk, the rescaled state across chunks.
Tests: ``tests/attention/test_performer.py`` (unbiasedness, Lemma 2, every form
≡ the reference at awkward lengths and at ×16 norms) and
``tests/attention/test_peers.py`` (performer-pytorch).
"""
from __future__ import annotations

import math

import torch

from .._checks import (CAUSAL_NONFINITE, check_choice, check_finite, check_number, check_positive_int, check_qkv,
                       check_tensor)
from .linear import EPS, linear_attention_features

KERNELS = ("positive", "trig")
CAUSAL_BACKENDS = ("auto", "chunked", "recurrent")
CHUNK = 64


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def gaussian_projection(num_features: int, dim: int, orthogonal: bool = True, seed: int = 0,
                        dtype=torch.float64, device=None) -> torch.Tensor:
    """ω as rows of an (num_features, dim) matrix: iid N(0, I), or orthogonal blocks (§2.4).

    Orthogonal: stack ⌈m/d⌉ blocks, each the Q of a QR decomposition of a Gaussian d×d
    matrix (d orthonormal rows), then give each row the norm of an independent Gaussian
    vector, so every row is still marginally N(0, I) but rows within a block are exactly
    orthogonal. Drawn on CPU in fp64 from ``seed`` (reproducible on every device).
    """
    check_positive_int(num_features, "num_features")
    check_positive_int(dim, "dim")
    g = _generator(seed)
    if not orthogonal:
        w = torch.randn(num_features, dim, generator=g, dtype=torch.float64)
    else:
        blocks = []
        for _ in range(math.ceil(num_features / dim)):
            qmat, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
            qmat = qmat * torch.sign(torch.diagonal(r))[None, :]   # make the rotation Haar-distributed
            blocks.append(qmat.T)
        w = torch.cat(blocks, dim=0)[:num_features]
        norms = torch.randn(num_features, dim, generator=g, dtype=torch.float64).norm(dim=1)
        w = w * norms[:, None]
    return w.to(device=device, dtype=dtype)


def softmax_kernel_features(x: torch.Tensor, projection: torch.Tensor, kernel: str = "positive",
                            stabilizer: torch.Tensor | None = None) -> torch.Tensor:
    """φ(x) for the softmax kernel exp(xᵀy), as in Lemma 1; ``x``: (..., dim), ``projection``: (m, dim).

    Returns (..., m) for ``"positive"`` and (..., 2m) for ``"trig"``. ``stabilizer``
    (positive only) is subtracted inside the exponential. The raw features of the
    definition: attention uses the stabilised logits of ``favor_logits`` instead.
    """
    check_tensor(x, "x", None, "(..., dim)")
    check_tensor(projection, "projection", 2, "(num_features, dim)")
    check_choice(kernel, "kernel", KERNELS)
    if projection.shape[1] != x.shape[-1]:
        raise ValueError(f"projection must have shape (num_features, dim={x.shape[-1]}), got {tuple(projection.shape)}")
    m = projection.shape[0]
    wx = x @ projection.to(x.dtype).T
    half_sq = 0.5 * (x * x).sum(-1, keepdim=True)
    if kernel == "positive":
        logits = wx - half_sq
        if stabilizer is not None:
            logits = logits - stabilizer
        return torch.exp(logits) / math.sqrt(m)
    return torch.exp(half_sq) / math.sqrt(m) * torch.cat([torch.sin(wx), torch.cos(wx)], dim=-1)


def favor_logits(x: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """a = ωᵀx̂ − |x̂|²/2 with x̂ = x / d^¼ (attention temperature): φ(x) = e^a/√m. (..., d) → (..., m)."""
    xs = x * x.shape[-1] ** -0.25
    return xs @ projection.to(x.dtype).T - 0.5 * (xs * xs).sum(-1, keepdim=True)


def performer_features(q, k, projection, kernel: str = "positive"):
    """Non-causal φ(Q), φ(K) at attention temperature, stabilised, so φ(q_i)·φ(k_j) ≈ exp(q_i·k_j/√d)
    up to a factor per query (which cancels in the normalisation).

    Positive: keys shifted per feature by their maximum c_r over all keys, queries by
    d_i = max_r(a_ir + c_r): every entry ≤ 1 and Σ_r φ(q_i)_r Σ_j φ(k_j)_r ≥ 1 (module docstring).
    Trig: the raw features (they can be negative; nothing to stabilise).
    """
    if kernel == "trig":
        scale = q.shape[-1] ** -0.25
        return (softmax_kernel_features(q * scale, projection, "trig"),
                softmax_kernel_features(k * scale, projection, "trig"))
    a, b = favor_logits(q, projection), favor_logits(k, projection)
    c = b.amax(dim=-2, keepdim=True).detach()                        # per feature, over the keys
    d = (a + c).amax(dim=-1, keepdim=True).detach()                  # per query
    return torch.exp(a + c - d), torch.exp(b - c)


def performer_reference(q, k, v, projection: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """The definition of (positive) FAVOR+ attention: key j gets the weight Σ_r exp(a_ir + b_jr) (the
    estimate of exp(q_i·k_j/√d), up to 1/m), normalised over the keys j (≤ i when causal).

    Computed from the logarithms of the weights (a logsumexp over features, then a softmax over keys), so
    it is exact at any scale; O(L_q·L_k·m) memory: for tests and small figures.
    """
    check_qkv(q, k, v)
    a, b = favor_logits(q, projection), favor_logits(k, projection)
    log_w = torch.logsumexp(a[..., :, None, :] + b[..., None, :, :], dim=-1)      # (B, H, Lq, Lk)
    if causal:
        from .softmax import causal_mask
        _check_causal_lengths(q, k)
        log_w = log_w.masked_fill(~causal_mask(q.shape[2], k.shape[2], q.device), float("-inf"))
    return torch.softmax(log_w, dim=-1) @ v


def _check_causal_lengths(q, k):
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"causal Performer attention needs q and k of the same length, got {q.shape[2]} "
                         f"and {k.shape[2]}")


def _safe_shift(dtype) -> float:
    """How far the running key maximum may grow inside a chunk for its factored weights: a quarter of the
    exponent range (22 in fp32, 177 in fp64, 2.8 in fp16), so a factor e^{shift} never overflows and a term
    lost to underflow is below e^{shift − ln(max)} (e^{−66} in fp32) of the denominator, which is ≥ 1."""
    return 0.25 * math.log(torch.finfo(dtype).max)


def init_favor_state(batch: int, heads: int, num_features: int, head_dim_v: int, device=None, dtype=None):
    """(S, z, c): S (B, H, m, D_v) and z (B, H, m) relative to the running per-feature key maximum c (B, H, m),
    which starts at −inf (no key yet)."""
    z = dict(device=device, dtype=dtype)
    return (torch.zeros(batch, heads, num_features, head_dim_v, **z), torch.zeros(batch, heads, num_features, **z),
            torch.full((batch, heads, num_features), float("-inf"), **z))


def favor_step(a_t, b_t, v_t, state, eps: float = EPS):
    """One token of causal FAVOR+ with a stabilised state. a_t, b_t: (B, H, m) logits; v_t: (B, H, D_v).

        c' = max(c, b_t);  S' = e^{c − c'} S + e^{b_t − c'} v_tᵀ;  z' = e^{c − c'} z + e^{b_t − c'}
        d = max_r(a_t + c');  y_t = e^{a_t + c' − d}ᵀS' / (e^{a_t + c' − d}ᵀz' + eps)

    Every exponent is ≤ 0 and the denominator is ≥ 1. Returns (y_t, (S', z', c'))."""
    S, z, c = state
    c_new = torch.maximum(c, b_t.detach())
    decay = torch.exp(c - c_new)
    k_t = torch.exp(b_t - c_new)
    S = S * decay[..., None] + k_t[..., :, None] * v_t[..., None, :]
    z = z * decay + k_t
    q_t = torch.exp(a_t + c_new - (a_t + c_new).amax(-1, keepdim=True).detach())
    num = torch.einsum("bhm,bhmv->bhv", q_t, S)
    den = (q_t * z).sum(-1, keepdim=True)
    return num / (den + eps), (S, z, c_new)


def favor_causal_recurrent(a, b, v, eps: float = EPS, state=None):
    """The RNN of ``favor_step`` over (B, H, L, m) logits: O(m·D_v) memory. Returns (out, state)."""
    B, H, L, m = a.shape
    state = init_favor_state(B, H, m, v.shape[-1], a.device, a.dtype) if state is None else state
    outs = []
    for t in range(L):
        y, state = favor_step(a[:, :, t], b[:, :, t], v[:, :, t], state, eps)
        outs.append(y)
    return torch.stack(outs, dim=2), state


def _favor_chunk(ac, bc, vc, S, z, c, eps):
    """One chunk of causal FAVOR+ with the state (S, z, c) of every earlier token: (out, S', z', c')."""
    running = torch.maximum(c[:, :, None], bc.detach().cummax(dim=2).values)          # c at each position
    top = running[:, :, -1:]                                                          # c at the chunk's end
    C = ac.shape[2]
    if C > 1 and float((top - running).amax()) > _safe_shift(ac.dtype):
        # a key far above the earlier ones: factors about c_end could overflow. Split the chunk; the state
        # carries the running maximum exactly between the halves (one token alone never needs splitting).
        (a1, a2), (b1, b2), (v1, v2) = (torch.split(t, [C // 2, C - C // 2], dim=2) for t in (ac, bc, vc))
        first, S, z, c = _favor_chunk(a1, b1, v1, S, z, c, eps)
        second, S, z, c = _favor_chunk(a2, b2, v2, S, z, c, eps)
        return torch.cat([first, second], dim=2), S, z, c
    d = (ac + running).amax(-1, keepdim=True).detach()                                # (B, H, C, 1)
    past = torch.exp(ac + c[:, :, None] - d)                                          # reads the carried state
    # weights Σ_r e^{a_ir + b_jr − d_i}, j ≤ i, factored about c_end: no factor exceeds e^{safe shift}
    w = (torch.exp(ac + top - d) @ torch.exp(bc - top).transpose(-1, -2)).tril()
    out = (past @ S + w @ vc) / ((past * z[:, :, None]).sum(-1) + w.sum(-1) + eps)[..., None]
    c_new = top[:, :, 0]
    decay = torch.exp(c - c_new)
    keys = torch.exp(bc - top)
    return out, S * decay[..., None] + keys.transpose(-1, -2) @ vc, z * decay + keys.sum(2), c_new


def favor_causal_chunked(a, b, v, eps: float = EPS, chunk_size: int = CHUNK, state=None):
    """Chunked causal FAVOR+ (equals ``favor_causal_recurrent``; tests/attention/test_performer.py).

    Inside a chunk the weights Σ_r exp(a_ir + b_jr − d_i), j ≤ i, are one matrix product of factors
    taken about the chunk's final key maximum c_end; across chunks the state (S, z, c) is rescaled as in
    ``favor_step``. Every exponent of a weight is ≤ 0 (d_i uses the running maximum up to i), and the
    factors stay below e^{safe shift} as long as the maximum grows little inside the chunk — when a key
    lies far above the ones before it, the chunk is halved until it does (down to single tokens, the
    recurrent form). Memory O(C² + C·m + m·D_v) forward.
    """
    check_positive_int(chunk_size, "chunk_size")
    B, H, L, m = a.shape
    S, z, c = init_favor_state(B, H, m, v.shape[-1], a.device, a.dtype) if state is None else state
    outs = []
    # torch.split rather than a slice per chunk: its backward is one concatenation, not L/C full-length zero
    # gradients (which made training quadratic in L).
    for ac, bc, vc in zip(*(torch.split(t, chunk_size, dim=2) for t in (a, b, v))):
        out, S, z, c = _favor_chunk(ac, bc, vc, S, z, c, eps)
        outs.append(out)
    return torch.cat(outs, dim=2), (S, z, c)


def performer_attention(q, k, v, num_features: int, causal: bool = False, kernel: str = "positive",
                        orthogonal: bool = True, seed: int = 0, projection: torch.Tensor | None = None,
                        backend: str = "auto", eps: float = EPS, chunk_size: int = CHUNK) -> torch.Tensor:
    """FAVOR+ approximation of ``softmax_attention(q, k, v, causal)`` (same 1/√head_dim scale).

    Args:
        q, k: (batch, heads, length, head_dim); v: (batch, heads, length, head_dim_v).
        num_features: m, the number of random features (≥ 1).
        kernel: ``"positive"`` (FAVOR+) or ``"trig"`` (sin/cos, 2m features).
        orthogonal: orthogonal blocks of ω (lower variance) or iid Gaussian.
        seed: draws ω (ignored when ``projection`` is given).
        projection: an explicit (num_features, head_dim) ω, e.g. to redraw features yourself.
        backend (causal, positive): ``"chunked"`` (``"auto"``) or ``"recurrent"``.
        eps: added to every denominator (≥ 1 for positive features, so it never dominates).
    Positive features equal ``performer_reference`` (up to eps) in every form, at any scale; trig
    features run through ``linear_attention_features`` unstabilised (the paper's point: they can make
    the denominator vanish or turn negative).
    """
    check_qkv(q, k, v)
    check_positive_int(num_features, "num_features")
    check_choice(kernel, "kernel", KERNELS)
    check_choice(backend, "backend", CAUSAL_BACKENDS)
    eps = check_number(eps, "eps", nonnegative=True)
    if projection is None:
        projection = gaussian_projection(num_features, q.shape[-1], orthogonal, seed, dtype=q.dtype, device=q.device)
    elif tuple(projection.shape) != (num_features, q.shape[-1]):
        raise ValueError(f"projection must have shape (num_features={num_features}, head_dim={q.shape[-1]}), "
                         f"got {tuple(projection.shape)}")
    if kernel == "trig":
        pq, pk = performer_features(q, k, projection, "trig")
        return linear_attention_features(pq, pk, v, causal=causal, backend="auto", eps=0.0)
    if not causal:
        pq, pk = performer_features(q, k, projection)
        return linear_attention_features(pq, pk, v, causal=False, eps=eps)
    _check_causal_lengths(q, k)
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        check_finite(t, name, CAUSAL_NONFINITE)
    a, b = favor_logits(q, projection), favor_logits(k, projection)
    if backend == "recurrent":
        return favor_causal_recurrent(a, b, v, eps)[0]
    return favor_causal_chunked(a, b, v, eps, chunk_size)[0]


def kernel_estimate(x: torch.Tensor, y: torch.Tensor, num_features: int, kernel: str = "positive",
                    orthogonal: bool = True, seed: int = 0) -> torch.Tensor:
    """The random-feature estimate φ(x)ᵀφ(y) of exp(xᵀy) for vectors x, y of shape (dim,) or (n, dim)
    (row-wise pairs). One draw of ω from ``seed``; average over seeds to see unbiasedness."""
    check_tensor(x, "x", None, "(dim,) or (n, dim)")
    check_tensor(y, "y", None, "(dim,) or (n, dim)")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    w = gaussian_projection(num_features, x.shape[-1], orthogonal, seed, dtype=x.dtype, device=x.device)
    return (softmax_kernel_features(x, w, kernel) * softmax_kernel_features(y, w, kernel)).sum(-1)


def kernel_mse_theory(x: torch.Tensor, y: torch.Tensor, num_features: int, kernel: str = "positive") -> torch.Tensor:
    """Lemma 2 of the paper: the MSE of one iid draw's estimate of exp(xᵀy) with m features."""
    check_choice(kernel, "kernel", KERNELS)
    sm, s, dlt = torch.exp((x * y).sum(-1)), ((x + y) ** 2).sum(-1), ((x - y) ** 2).sum(-1)
    if kernel == "positive":
        return torch.exp(s) * sm ** 2 * (1 - torch.exp(-s)) / num_features
    return torch.exp(s) * sm ** -2 * (1 - torch.exp(-dlt)) ** 2 / (2 * num_features)


def favor_draws(q, k, v, num_features: int, draws: int, orthogonal: bool = True, first_seed: int = 0):
    """Numerators N_s = Σ_j φ(q_i)ᵀφ(k_j) v_j and denominators D_s = Σ_j φ(q_i)ᵀφ(k_j) of ``draws``
    independent draws of ω (positive features, raw — keep the norms moderate). Each is an unbiased estimate
    of its exact counterpart; their ratio N_s/D_s, the FAVOR+ output, is not. q, k: (L_q, d), (L_k, d);
    v: (L_k, D_v). Returns (N (draws, L_q, D_v), D (draws, L_q))."""
    check_tensor(q, "q", 2, "(length_q, head_dim)")
    check_tensor(k, "k", 2, "(length_k, head_dim)")
    check_tensor(v, "v", 2, "(length_k, head_dim_v)")
    check_positive_int(draws, "draws")
    scale = q.shape[-1] ** -0.25
    nums, dens = [], []
    for s in range(first_seed, first_seed + draws):
        w = gaussian_projection(num_features, q.shape[-1], orthogonal, seed=s, dtype=q.dtype, device=q.device)
        A = softmax_kernel_features(q * scale, w) @ softmax_kernel_features(k * scale, w).T
        nums.append(A @ v)
        dens.append(A.sum(-1))
    return torch.stack(nums), torch.stack(dens)
