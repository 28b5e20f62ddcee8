"""Mamba-2's state-space duality (SSD) in chunked form (Dao & Gu 2024).

Mamba-2 restricts A to a *scalar* per head: a_t = exp(Δ_t A_h). Then, inside a chunk of T steps,
the scan is a masked matrix product — attention-like, tensor-core friendly:

    y_t = Σ_{s≤t} exp(Σ_{r=s+1..t} Δ_r A_h) (C_t · B_s) Δ_s u_s        (intra-chunk, T × T per head)

and only the chunk-final states (batch, heads, P, N) are passed between chunks by a short
recurrence, exactly as in the chunked scan. With A[d, :] equal to A_h for the head of channel d,
this is ``selective_scan`` with a shared Δ per head: tests/ssm/test_ssd.py checks ``ssd_chunked`` ≡
``selective_scan(backend="sequential")`` in fp64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

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
    nc = -(-L // T)
    pad = nc * T - L
    if pad:   # Δ = 0 and u = 0 past the end leave the state unchanged
        u, delta = F.pad(u, (0, pad)), F.pad(delta, (0, pad))
        B, C = F.pad(B, (0, pad)), F.pad(C, (0, pad))
    uc = u.unflatten(-1, (nc, T))                                  # (b, H, P, nc, T)
    dc = delta.unflatten(-1, (nc, T))                              # (b, H, nc, T)
    Bc, Cc = B.unflatten(-1, (nc, T)), C.unflatten(-1, (nc, T))    # (b, N, nc, T)
    logA = dc * A[None, :, None, None]                             # log a_t  (b, H, nc, T), ≤ 0
    cum = logA.cumsum(-1)
    # Decay from s to t (s ≤ t): exp(cum_t − cum_s); −inf above the diagonal so exp gives exactly 0.
    seg = cum[..., :, None] - cum[..., None, :]                    # (b, H, nc, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=u.device).tril()
    decay = torch.exp(seg.masked_fill(~causal, float("-inf")))
    scores = torch.einsum("bnct,bncs->bcts", Cc, Bc)               # C_t · B_s  (b, nc, T, T)
    xs = uc * dc[:, :, None]                                       # Δ_s u_s    (b, H, P, nc, T)
    y = torch.einsum("bhcts,bcts,bhpcs->bhpct", decay, scores, xs)
    # Chunk-final states from a zero start, then the carries between chunks.
    to_end = torch.exp(cum[..., -1:] - cum)                        # (b, H, nc, T)
    states = torch.einsum("bhcs,bhpcs,bncs->bhcpn", to_end, xs, Bc)
    total = torch.exp(cum[..., -1])                                # (b, H, nc)
    h = u.new_zeros(b, H, P, B.shape[1])
    carries = []
    for c in range(nc):
        carries.append(h)
        h = total[:, :, c, None, None] * h + states[:, :, c]
    carry = torch.stack(carries, 2)                                # (b, H, nc, P, N)
    y = y + torch.einsum("bhct,bnct,bhcpn->bhpct", torch.exp(cum), Cc, carry)
    return y.flatten(-2)[..., :L]
