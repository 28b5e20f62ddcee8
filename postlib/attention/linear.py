"""Linear attention (Katharopoulos et al. 2020): the kernel trick that turns attention into an RNN.

Softmax attention weighs value j for query i by sim(q_i, k_j) = exp(q_i·k_j/√d).
Replace sim by a kernel with an explicit feature map, sim(q, k) = φ(q)·φ(k), and
the sum over keys factorises (the paper's Eq. 2 → Eq. 5):

    V'_i = Σ_j φ(q_i)ᵀφ(k_j) v_j / Σ_j φ(q_i)ᵀφ(k_j)
         = φ(q_i)ᵀ (Σ_j φ(k_j) v_jᵀ) / φ(q_i)ᵀ (Σ_j φ(k_j))
         = φ(q_i)ᵀ S / φ(q_i)ᵀ z.

S (D_φ × D_v) and z (D_φ) no longer depend on i: the cost is O(L·D_φ·D_v)
instead of O(L²·D). With a causal mask the sums run over j ≤ i, so S_i and
z_i are *prefix sums* — equivalently the state of an RNN (Eq. 16–20):

    S_i = S_{i-1} + φ(k_i) v_iᵀ,   z_i = z_{i-1} + φ(k_i),   V'_i = φ(q_i)ᵀS_i / φ(q_i)ᵀz_i.

Forms in this module, all equal to ``linear_attention_reference`` (the loop
over Eq. 2) — proved in ``tests/attention/test_linear.py``:

* non-causal: φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1);
* causal ``"torch"``: cumulative sums of the outer products φ(k_j)v_jᵀ
  (O(L·D_φ·D_v) memory — simple, but every prefix state is stored);
* causal ``"chunked"``: exact attention inside chunks of C tokens plus the
  carried state between chunks (the form GPU kernels use);
* causal ``"recurrent"``: the RNN view, one token at a time, O(D_φ·D_v) memory;
* causal ``"triton"``: the chunked form as a Triton kernel
  (``postlib.kernels.linear_attention``).

``eps`` (a finite number >= 0) is added to every denominator in every form so the
forms agree exactly. ``feature_map="relu"`` needs ``eps > 0``: relu zeroes a whole
row φ(q_i) whenever every entry of q_i is <= 0, and 0/0 would be NaN.

The causal forms refuse non-finite input: the chunked and Triton forms multiply a
masked (C × C) block by V, and 0·NaN = NaN would reach earlier outputs.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .._checks import (CAUSAL_NONFINITE, check_choice, check_finite, check_number, check_positive_int, check_qkv,
                       check_tensor)

FEATURE_MAPS = ("elu+1", "relu", "identity")
CAUSAL_BACKENDS = ("auto", "torch", "chunked", "recurrent", "triton")
EPS = 1e-6


def apply_feature_map(x: torch.Tensor, kind: str | Callable = "elu+1") -> torch.Tensor:
    """φ applied to the last dimension.

    ``"elu+1"`` is the paper's choice (positive, so the denominator never
    vanishes); ``"relu"`` is positive but can zero whole rows; ``"identity"``
    gives unnormalised, sign-indefinite similarities (shown in the chapter to
    explain why positivity matters). A callable is used as is.
    """
    if callable(kind):
        return kind(x)
    check_choice(kind, "feature_map", FEATURE_MAPS)
    if kind == "elu+1":
        return F.elu(x) + 1.0
    if kind == "relu":
        return F.relu(x)
    return x


def linear_attention_weights(q, k, causal: bool = False, feature_map_kind="elu+1", eps: float = EPS) -> torch.Tensor:
    """The (B, H, L_q, L_k) matrix A_ij = φ(q_i)·φ(k_j) / Σ_j' φ(q_i)·φ(k_j') — what linear attention
    would look like if we *did* materialise it (for attention-map figures and the reference)."""
    check_qkv(q, k, k)
    pq, pk = apply_feature_map(q, feature_map_kind), apply_feature_map(k, feature_map_kind)
    sim = pq @ pk.transpose(-2, -1)
    if causal:
        from .softmax import causal_mask
        sim = sim.masked_fill(~causal_mask(q.shape[2], k.shape[2], q.device), 0.0)
    return sim / (sim.sum(-1, keepdim=True) + eps)


def check_eps(eps, feature_map="elu+1") -> float:
    """``eps`` must be finite and >= 0, and > 0 with relu features (a zero row of φ(q) gives 0/0)."""
    eps = check_number(eps, "eps", nonnegative=True)
    if eps == 0 and isinstance(feature_map, str) and feature_map == "relu":
        raise ValueError("eps must be > 0 with feature_map='relu': relu zeroes the whole feature row of any query "
                         "whose entries are all <= 0, and its denominator φ(q)ᵀΣφ(k) is then 0 (0/0 = NaN)")
    return eps


def linear_attention_reference(q, k, v, causal: bool = False, feature_map="elu+1", eps: float = EPS) -> torch.Tensor:
    """The loop over the paper's Eq. 2, one query at a time: the definition every fast form must equal.

    Causal: query i sees keys j <= i + (L_k − L_q), the queries aligned to the end of the keys (a decoder
    reading a cache). More queries than keys would leave the first queries without any key, so
    ``causal=True`` with L_q > L_k is refused, as the fast forms refuse it."""
    check_qkv(q, k, v)
    eps = check_eps(eps, feature_map)
    if causal and q.shape[2] > k.shape[2]:
        raise ValueError(f"causal linear attention needs at least as many keys as queries (queries aligned to the "
                         f"end of the keys), got q of length {q.shape[2]} and k of length {k.shape[2]}")
    pq, pk = apply_feature_map(q, feature_map), apply_feature_map(k, feature_map)
    L_q, L_k = q.shape[2], k.shape[2]
    out = torch.empty(*q.shape[:3], v.shape[-1], dtype=v.dtype, device=v.device)
    for i in range(L_q):
        last = i + (L_k - L_q) + 1 if causal else L_k        # keys aligned to the end (decoding convention)
        sim = torch.einsum("bhd,bhjd->bhj", pq[:, :, i], pk[:, :, :last])
        num = torch.einsum("bhj,bhjv->bhv", sim, v[:, :, :last])
        out[:, :, i] = num / (sim.sum(-1, keepdim=True) + eps)
    return out


def _noncausal(pq, pk, v, eps):
    kv = torch.einsum("bhjd,bhjv->bhdv", pk, v)                 # S = φ(K)ᵀV : (D_φ, D_v) per head
    z = pk.sum(dim=2)                                          # z = φ(K)ᵀ1
    num = torch.einsum("bhid,bhdv->bhiv", pq, kv)
    den = torch.einsum("bhid,bhd->bhi", pq, z)[..., None]
    return num / (den + eps)


def causal_prefix_sum(pq, pk, v, eps: float = EPS):
    """Causal form by cumulative sums of φ(k_j)v_jᵀ. Stores all L states (memory L·D_φ·D_v)."""
    kv = torch.cumsum(torch.einsum("bhjd,bhjv->bhjdv", pk, v), dim=2)
    z = torch.cumsum(pk, dim=2)
    num = torch.einsum("bhid,bhidv->bhiv", pq, kv)
    den = torch.einsum("bhid,bhid->bhi", pq, z)[..., None]
    return num / (den + eps)


def causal_chunked(pq, pk, v, eps: float = EPS, chunk_size: int = 64, state=None):
    """Chunked causal form: inside a chunk, the masked (C × C) similarity matrix; across chunks,
    the state (S, z) carried from all earlier chunks. Cost O(L·C·D + L·D_φ·D_v), memory O(C² + D_φ·D_v).
    The Triton kernel ``postlib.kernels.linear_attention.triton_causal_linear_attention`` is this
    form fused (tests/kernels/test_linear_attention_triton.py).

    It runs on the one chunked loop of the decayed linear recurrence (``postlib.recurrent.recurrence``,
    decay a = 1); the denominator is the same recurrence on a column of ones appended to v, so S and z
    travel together as one (D_φ × (D_v + 1)) state.
    Returns the output and the final state ``(S, z)`` (the RNN state after the last token).
    """
    from ..recurrent.recurrence import recurrence_chunked
    check_positive_int(chunk_size, "chunk_size")
    v1 = torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)
    init = None if state is None else torch.cat([state[0], state[1][..., None]], dim=-1)
    out, S1 = recurrence_chunked(pq, pk, v1, None, chunk_size, init)
    return out[..., :-1] / (out[..., -1:] + eps), (S1[..., :-1], S1[..., -1])


def recurrent_step(pq_t, pk_t, v_t, state, eps: float = EPS):
    """One token of the RNN view (Eq. 16–20). pq_t, pk_t: (B, H, D_φ); v_t: (B, H, D_v);
    state = (S (B, H, D_φ, D_v), z (B, H, D_φ)). Returns (out_t, new_state)."""
    S, z = state
    S = S + pk_t[..., :, None] * v_t[..., None, :]
    z = z + pk_t
    num = torch.einsum("bhd,bhdv->bhv", pq_t, S)
    den = torch.einsum("bhd,bhd->bh", pq_t, z)[..., None]
    return num / (den + eps), (S, z)


def causal_recurrent(pq, pk, v, eps: float = EPS, state=None, return_states: bool = False):
    """The RNN view: constant memory in L. With ``return_states`` also returns the list of S_t
    (used to animate the state filling up)."""
    B, H, L, Dk = pq.shape
    if state is None:
        state = (pq.new_zeros(B, H, Dk, v.shape[-1]), pq.new_zeros(B, H, Dk))
    outs, states = [], []
    for t in range(L):
        o, state = recurrent_step(pq[:, :, t], pk[:, :, t], v[:, :, t], state, eps)
        outs.append(o)
        if return_states:
            states.append(state[0])
    out = torch.stack(outs, dim=2)
    return (out, state, states) if return_states else (out, state)


def linear_attention_features(pq, pk, v, causal: bool = False, backend: str = "auto", eps: float = EPS,
                              chunk_size: int = 64) -> torch.Tensor:
    """Linear attention on *already mapped* features φ(Q), φ(K) (used by Performer too)."""
    check_qkv(pq, pk, v, "(batch, heads, length, feature_dim)")
    check_choice(backend, "backend", CAUSAL_BACKENDS)
    eps = check_number(eps, "eps", nonnegative=True)
    if not causal:
        return _noncausal(pq, pk, v, eps)
    if pq.shape[2] != pk.shape[2]:
        raise ValueError(f"causal linear attention needs q and k of the same length, got {pq.shape[2]} and {pk.shape[2]}")
    for t, name in ((pq, "pq"), (pk, "pk"), (v, "v")):
        check_finite(t, name, CAUSAL_NONFINITE)
    if backend == "auto":
        backend = "triton" if pq.is_cuda else "chunked"
    if backend == "torch":
        return causal_prefix_sum(pq, pk, v, eps)
    if backend == "chunked":
        return causal_chunked(pq, pk, v, eps, chunk_size)[0]
    if backend == "recurrent":
        return causal_recurrent(pq, pk, v, eps)[0]
    from ..kernels.linear_attention import triton_causal_linear_attention
    return triton_causal_linear_attention(pq, pk, v, eps=eps)


def linear_attention(q, k, v, causal: bool = False, feature_map="elu+1", backend: str = "auto",
                     eps: float = EPS, chunk_size: int = 64) -> torch.Tensor:
    """Linear attention φ(Q)(φ(K)ᵀV) / φ(Q)(φ(K)ᵀ1), or its causal (prefix-sum) version.

    Args:
        q, k: (batch, heads, length, head_dim); v: (batch, heads, length, head_dim_v).
        causal: sums over j <= i only.
        feature_map: ``"elu+1"`` (paper), ``"relu"``, ``"identity"`` or a callable.
        backend (causal only): ``"torch"`` (prefix sums), ``"chunked"``, ``"recurrent"``,
            ``"triton"``, or ``"auto"`` (Triton on CUDA tensors, chunked otherwise).
        eps: added to every denominator; finite, >= 0, and > 0 with ``"relu"``.
    Equals ``linear_attention_reference`` (tests/attention/test_linear.py).
    Causal input must be finite (see the module docstring).
    """
    check_qkv(q, k, v)
    if not (callable(feature_map) or feature_map in FEATURE_MAPS):
        raise ValueError(f"feature_map must be one of {list(FEATURE_MAPS)} or a callable, got {feature_map!r}")
    eps = check_eps(eps, feature_map)
    pq, pk = apply_feature_map(q, feature_map), apply_feature_map(k, feature_map)
    return linear_attention_features(pq, pk, v, causal, backend, eps, chunk_size)


def state_trajectory(k, v, feature_map_kind="elu+1") -> torch.Tensor:
    """The RNN state S_t = Σ_{j<=t} φ(k_j)v_jᵀ for every t: (L, D_φ, D_v) for one (batch, head).

    ``k``: (length, head_dim), ``v``: (length, head_dim_v)."""
    check_tensor(k, "k", 2, "(length, head_dim)")
    check_tensor(v, "v", 2, "(length, head_dim_v)")
    if k.shape[0] != v.shape[0]:
        raise ValueError(f"k and v must have the same length, got k {tuple(k.shape)}, v {tuple(v.shape)}")
    pk = apply_feature_map(k, feature_map_kind)
    return torch.cumsum(pk[:, :, None] * v[:, None, :], dim=0)
