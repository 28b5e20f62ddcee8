"""Mamba-2's state-space duality (SSD) in chunked form (Dao & Gu 2024).

Mamba-2 restricts A to a *scalar* per head: a_t = exp(Δ_t A_h). Then, inside a chunk of T steps,
the scan is a masked matrix product — attention-like, tensor-core friendly:

    y_t = Σ_{s≤t} exp(Σ_{r=s+1..t} Δ_r A_h) (C_t · B_s) Δ_s u_s        (intra-chunk, T × T per head)

and only the chunk-final states (batch, heads, P, N) are passed between chunks by a short
recurrence, exactly as in the chunked scan. This is the decayed linear recurrence of
``postlib.recurrent.recurrence`` (query C_t, key B_s, value Δ_s u_s, decay exp(Δ_t A_h)), and it runs on that
module's one chunked loop — the loop retention and linear attention use too (the family is one recurrence:
tests/recurrent/test_recurrence.py). With A[d, :] equal to A_h for the head of channel d,
this is ``selective_scan`` with a shared Δ per head: tests/ssm/test_ssd.py checks ``ssd_chunked`` ≡
``selective_scan(backend="sequential")`` in fp64.
"""
from __future__ import annotations

from .._checks import CAUSAL_NONFINITE, check_finite, check_positive_int, check_tensor


def ssd_chunked(u, delta, A, B, C, chunk_size: int = 16):
    """u (batch, heads, P, L); delta (batch, heads, L); A (heads,) negative; B, C (batch, N, L) → y (batch, heads, P, L).

    Inputs must be finite: the intra-chunk product is masked, and 0·NaN = NaN would carry
    a later NaN to earlier outputs of the same chunk.
    """
    check_tensor(u, "u", 4, "(batch, heads, P, L)")
    b, H, P, L = u.shape
    check_tensor(delta, "delta", 3, "(batch, heads, L)")
    if delta.shape != (b, H, L):
        raise ValueError(f"delta must have shape (batch, heads, L) = {(b, H, L)}, got {tuple(delta.shape)}")
    check_tensor(A, "A", 1, "(heads,)")
    if A.shape != (H,):
        raise ValueError(f"A must have shape (heads,) = ({H},), got {tuple(A.shape)}")
    for name, M in (("B", B), ("C", C)):
        check_tensor(M, name, 3, "(batch, N, L)")
        if M.shape[0] != b or M.shape[2] != L:
            raise ValueError(f"{name} must have shape (batch, N, L) with batch={b}, L={L}, got {tuple(M.shape)}")
    if C.shape != B.shape:
        raise ValueError(f"B and C must have the same shape (batch, N, L) (one state size N), got B {tuple(B.shape)} "
                         f"and C {tuple(C.shape)}")
    for t, name in ((u, "u"), (delta, "delta"), (A, "A"), (B, "B"), (C, "C")):
        check_finite(t, name, CAUSAL_NONFINITE)
    T = check_positive_int(chunk_size, "chunk_size")
    # The decayed linear recurrence S_t = a_t S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t with a_t = exp(Δ_t A_h),
    # query C_t and key B_s (shared by the heads), value Δ_s u_s: one chunked loop serves SSD, retention and
    # linear attention (postlib.recurrent.recurrence).
    from ..recurrent.recurrence import recurrence_chunked
    q = C.transpose(1, 2)[:, None].expand(b, H, L, C.shape[1])
    k = B.transpose(1, 2)[:, None].expand(b, H, L, B.shape[1])
    v = (u * delta[:, :, None]).transpose(2, 3)                    # Δ_s u_s: (b, H, L, P)
    y, _ = recurrence_chunked(q, k, v, delta * A[None, :, None], T)
    return y.transpose(2, 3)
