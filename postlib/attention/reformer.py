"""Reformer's LSH attention (Kitaev, Kaiser & Levskaya 2020).

Softmax is dominated by the few keys nearest each query, so find them by
hashing instead of scoring all L of them.

* **Angular LSH by random rotations** (§2, after Andoni et al. 2015): with a
  random R ∈ ℝ^{d×b/2}, h(x) = argmax([xR; −xR]) ∈ {0..b−1}. Vectors at a
  small angle tend to land in the same bucket. For b = 2 this is the sign of a
  random projection, with collision probability exactly 1 − θ/π.
* **Shared QK**: keys are the normalised queries, k_j = q_j/|q_j|, so a query
  and its key hash together. A token may not attend to itself unless nothing
  else is available (its own score is set to −5·10⁴, as in the paper).
* **Sort, chunk, attend**: sort tokens by (bucket, position), cut into chunks
  of ``chunk_size``, and let each chunk attend to itself and one chunk back.
* **Multi-round**: ``n_hashes`` independent hashes; each round's output o^r
  is weighted by softmax_r of its log-normaliser z^r. A key that several rounds
  find would be counted once per round; as the paper does (its appendix, "the
  number of rounds in which j is found": N_ij), each occurrence's score is lowered
  by log N_ij (``dedup=True``), and the combination is then exactly softmax over
  the *union* of the rounds' key sets:
      Σ_r e^{z^r − z} o^r = Σ_{j ∈ ∪P^r} e^{s_ij} v_j / Σ_{j ∈ ∪P^r} e^{s_ij}.
  ``dedup=False`` keeps the duplicates (reformer-pytorch's default), which
  over-weights the keys every round agrees on. ``lsh_union_reference`` is that
  union softmax written as a loop.

As in the paper's reference code (and ``reformer-pytorch``), the rounds are
sorted together into one long sequence, so the first chunk of a round looks
back into the last chunk of the previous round. ``lsh_attention_reference``
is the per-query loop over exactly those key sets; ``lsh_attention`` is the
vectorised sort-and-chunk form (tests/attention/test_reformer.py), and
``tests/attention/test_peers.py`` feeds ``reformer-pytorch``'s own buckets to it.
Lengths that are not a multiple of ``chunk_size`` are padded with keys that are
never attended (an extra bucket that sorts last).
"""
from __future__ import annotations

import math
from collections import Counter

import torch
import torch.nn.functional as F

from .._checks import check_positive_int, check_tensor

SELF_SCORE = -5e4          # "attend to yourself only when nothing else is there"


def _check_buckets(n_buckets: int):
    check_positive_int(n_buckets, "n_buckets", 2)
    if n_buckets % 2:
        raise ValueError(f"n_buckets must be even (h = argmax([xR; -xR]) gives 2·(b/2) buckets), got {n_buckets}")


def random_rotations(dim: int, n_buckets: int, n_hashes: int, seed: int = 0, dtype=torch.float64,
                     device=None) -> torch.Tensor:
    """R of shape (n_hashes, dim, n_buckets/2), iid N(0, 1), from ``seed``."""
    _check_buckets(n_buckets)
    check_positive_int(n_hashes, "n_hashes")
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(n_hashes, dim, n_buckets // 2, generator=g, dtype=torch.float64)
    return R.to(device=device, dtype=dtype)


def lsh_hash(x: torch.Tensor, n_buckets: int, n_hashes: int = 1, seed: int = 0, rotations=None) -> torch.Tensor:
    """Bucket ids h_r(x) = argmax([xR_r; −xR_r]) for every round: x (..., L, d) → (..., n_hashes, L) int64."""
    check_tensor(x, "x", None, "(..., length, dim)")
    _check_buckets(n_buckets)
    check_positive_int(n_hashes, "n_hashes")
    R = random_rotations(x.shape[-1], n_buckets, n_hashes, seed, x.dtype, x.device) if rotations is None else rotations
    rotated = torch.einsum("...ld,rdb->...rlb", x, R.to(x.dtype))
    return torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)


def _check_inputs(qk, v, buckets, n_buckets, n_hashes, chunk_size):
    check_tensor(qk, "qk", 4, "(batch, heads, length, head_dim)")
    check_tensor(v, "v", 4, "(batch, heads, length, head_dim_v)")
    if v.shape[:3] != qk.shape[:3]:
        raise ValueError(f"v must have shape (batch, heads, length={qk.shape[2]}, head_dim_v) like qk, "
                         f"got qk {tuple(qk.shape)}, v {tuple(v.shape)}")
    if qk.shape[2] == 0:
        raise ValueError("qk must have length >= 1")
    _check_buckets(n_buckets)
    check_positive_int(n_hashes, "n_hashes")
    check_positive_int(chunk_size, "chunk_size")
    if buckets is not None:
        want = (*qk.shape[:2], n_hashes, qk.shape[2])
        if tuple(buckets.shape) != want:
            raise ValueError(f"buckets must have shape (batch, heads, n_hashes, length) = {want}, got {tuple(buckets.shape)}")


def _sorted_layout(buckets, n_buckets, length, chunk_size):
    """Sort all rounds together by (round, bucket, position); pads get bucket n_buckets (sorts last)."""
    *lead, n_hashes, L = buckets.shape
    L_pad = math.ceil(L / chunk_size) * chunk_size
    if L_pad > L:
        buckets = F.pad(buckets, (0, L_pad - L), value=n_buckets)
    rounds = torch.arange(n_hashes, device=buckets.device)[:, None] * (n_buckets + 1)
    t = torch.arange(L_pad, device=buckets.device)
    keys = ((buckets + rounds) * L_pad + t).reshape(*lead, n_hashes * L_pad)
    order = keys.argsort(dim=-1)                     # keys are distinct, so the sort is unambiguous
    return order, L_pad


def _duplicate_counts(chunk_of, bt, bkt, n_chunks):
    """N for every (query slot, attended key) of the chunked layout: how many times the key occurs in *all*
    the slots the query attends to, over every round. A query in sorted chunk c attends to chunks c and c − 1
    (mod n_chunks, the rounds sorted into one sequence); a key occupies one chunk per round.
    chunk_of: (B, H, L_pad, n_hashes); bt: (B, H, n_chunks, C) query tokens; bkt: (B, H, n_chunks, 2C) keys."""
    B, H, _, n_hashes = chunk_of.shape

    def at(tokens):                                   # each token's chunk in every round; sizes explicit for B = 0
        flat = tokens.reshape(B, H, math.prod(tokens.shape[2:]), 1)
        return chunk_of.gather(2, flat.expand(-1, -1, -1, n_hashes))

    q_chunks = at(bt).reshape(*bt.shape, n_hashes)                    # (B, H, nc, C, n_hashes)
    k_chunks = at(bkt).reshape(*bkt.shape, n_hashes)[:, :, :, None]   # (B, H, nc, 1, 2C, n_hashes)
    counts = torch.zeros(*bt.shape, bkt.shape[-1], dtype=torch.long, device=bt.device)
    for r in range(n_hashes):                                         # the query's slot in round r ...
        c = q_chunks[..., r, None, None]
        for attended in (c, (c - 1) % n_chunks):                      # ... sees its chunk and the one before
            counts += (k_chunks == attended).sum(-1)
    return counts


def lsh_attention(qk, v, n_buckets: int, n_hashes: int = 1, chunk_size: int = 32, causal: bool = False,
                  seed: int = 0, buckets: torch.Tensor | None = None, return_buckets: bool = False,
                  dedup: bool = True):
    """Reformer LSH attention with shared QK.

    Args:
        qk: (batch, heads, length, head_dim) — queries; keys are qk/|qk|.
        v: (batch, heads, length, head_dim_v).
        n_buckets: even number of hash buckets b; n_hashes: rounds; chunk_size: tokens per chunk.
        causal: mask keys after the query (chunk membership still depends on all tokens).
        buckets: optional precomputed (batch, heads, n_hashes, length) bucket ids (else ``lsh_hash``).
        dedup: count a key found in several rounds once (the paper's correction, module docstring).
    Returns (batch, heads, length, head_dim_v) [and the buckets]. Equals ``lsh_attention_reference``
    (tests/attention/test_reformer.py); with ``dedup`` also softmax over the union of the rounds' keys.
    """
    _check_inputs(qk, v, buckets, n_buckets, n_hashes, chunk_size)
    B, H, L, D = qk.shape
    if buckets is None:
        buckets = lsh_hash(qk, n_buckets, n_hashes, seed)
    order, L_pad = _sorted_layout(buckets, n_buckets, L, chunk_size)
    qk_p = F.pad(qk, (0, 0, 0, L_pad - L))
    v_p = F.pad(v, (0, 0, 0, L_pad - L))
    pos = order % L_pad                                              # token index of each sorted slot
    idx = pos[..., None]
    sq = qk_p.gather(2, idx.expand(-1, -1, -1, D))
    sv = v_p.gather(2, idx.expand(-1, -1, -1, v.shape[-1]))
    n_chunks = order.shape[-1] // chunk_size
    bq = sq.reshape(B, H, n_chunks, chunk_size, D)
    Dv = v.shape[-1]
    bv = sv.reshape(B, H, n_chunks, chunk_size, Dv)             # explicit sizes: an empty batch has no -1 to infer
    bt = pos.reshape(B, H, n_chunks, chunk_size)

    def look_one_back(x):                                            # this chunk + the previous one (wrapping)
        return torch.cat([x, torch.roll(x, 1, dims=2)], dim=3)

    bk = look_one_back(F.normalize(bq, dim=-1))
    bv, bkt = look_one_back(bv), look_one_back(bt)
    dots = torch.einsum("bhcid,bhcjd->bhcij", bq, bk) * D ** -0.5
    undo = order.argsort(dim=-1)
    if dedup and n_hashes > 1:         # one round: a key occurs once (or, with one chunk, every key twice: cancels)
        chunk_of = (undo // chunk_size).reshape(B, H, n_hashes, L_pad).transpose(-1, -2)
        dots = dots - _duplicate_counts(chunk_of, bt, bkt, n_chunks).to(dots.dtype).log()
    neg = torch.finfo(dots.dtype).min
    mask = (bkt >= L)[..., None, :].expand_as(dots)                  # padding keys
    if causal:
        mask = mask | (bt[..., :, None] < bkt[..., None, :])
    dots = dots.masked_fill(mask, neg)
    dots = dots.masked_fill(bt[..., :, None] == bkt[..., None, :], SELF_SCORE)
    lse = torch.logsumexp(dots, dim=-1, keepdim=True)
    bo = torch.einsum("bhcij,bhcjd->bhcid", torch.exp(dots - lse), bv)
    # Unsort back to (round, position) and combine the rounds by their normalisers.
    so = bo.reshape(B, H, n_hashes * L_pad, Dv).gather(2, undo[..., None].expand(-1, -1, -1, Dv))
    slse = lse.reshape(B, H, n_hashes * L_pad).gather(2, undo)
    o = so.reshape(B, H, n_hashes, L_pad, Dv)[:, :, :, :L]
    w = torch.softmax(slse.reshape(B, H, n_hashes, L_pad)[:, :, :, :L], dim=2)
    out = (o * w[..., None]).sum(dim=2)
    return (out, buckets) if return_buckets else out


def _attended(buckets, n_buckets: int, length: int, chunk_size: int):
    """For every (batch, head, query i): the tokens each round's slot of i attends to — its sorted chunk and
    the one before (the rounds sorted into one sequence), duplicates and padding included — one list per round."""
    order, L_pad = _sorted_layout(buckets, n_buckets, length, chunk_size)
    n_chunks = order.shape[-1] // chunk_size
    for b in range(buckets.shape[0]):
        for h in range(buckets.shape[1]):
            slots = order[b, h].tolist()
            where = {s: p for p, s in enumerate(slots)}              # flat (round, token) -> sorted position
            for i in range(length):
                rounds = []
                for r in range(buckets.shape[2]):
                    c = where[r * L_pad + i] // chunk_size
                    chunks = (c, (c - 1) % n_chunks)
                    rounds.append([slots[s] % L_pad for chunk in chunks
                                   for s in range(chunk * chunk_size, (chunk + 1) * chunk_size)])
                yield b, h, i, rounds


def _score(qk, keys, b, h, i, j, causal):
    """Query i's score for key j: masked (padding, or the future when causal), the self rule, or q_i·k_j/√d."""
    L, D = qk.shape[2], qk.shape[3]
    if j >= L or (causal and j > i):
        return torch.tensor(torch.finfo(qk.dtype).min, dtype=qk.dtype)
    if j == i:
        return torch.tensor(SELF_SCORE, dtype=qk.dtype)
    return qk[b, h, i] @ keys[b, h, j] * D ** -0.5


def lsh_attention_reference(qk, v, buckets: torch.Tensor, n_buckets: int, chunk_size: int,
                            causal: bool = False, dedup: bool = True) -> torch.Tensor:
    """Per-query loop: for round r, query i attends to the tokens in its sorted chunk and the one before;
    scores q_i·k_j/√d with k_j = q_j/|q_j|, lowered by log N_ij (``dedup``: N_ij = how often j occurs in all
    of i's attended slots); then the rounds are mixed by softmax of their log-normalisers."""
    n_hashes = buckets.shape[2]
    _check_inputs(qk, v, buckets, n_buckets, n_hashes, chunk_size)
    L = qk.shape[2]
    keys = F.normalize(qk, dim=-1)
    out = torch.zeros(*qk.shape[:3], v.shape[-1], dtype=v.dtype)
    for b, h, i, rounds in _attended(buckets, n_buckets, L, chunk_size):
        found = Counter(j for attended in rounds for j in attended)
        round_out, round_lse = [], []
        for attended in rounds:
            scores = torch.stack([_score(qk, keys, b, h, i, j, causal)
                                  - (math.log(found[j]) if dedup and n_hashes > 1 else 0.0) for j in attended])
            lse = torch.logsumexp(scores, 0)
            vals = torch.stack([v[b, h, min(j, L - 1)] for j in attended])   # padded keys have weight 0
            round_out.append(torch.exp(scores - lse) @ vals)
            round_lse.append(lse)
        w = torch.softmax(torch.stack(round_lse), 0)
        out[b, h, i] = (torch.stack(round_out) * w[:, None]).sum(0)
    return out


def lsh_union_reference(qk, v, buckets: torch.Tensor, n_buckets: int, chunk_size: int,
                        causal: bool = False) -> torch.Tensor:
    """What multi-round LSH attention computes with ``dedup=True``, from its definition: for each query,
    softmax (shared-QK scores, the self rule) over the *union* of the keys any round puts in its sorted
    chunk or the one before, each key once. A per-query loop (tests/attention/test_reformer.py)."""
    _check_inputs(qk, v, buckets, n_buckets, buckets.shape[2], chunk_size)
    L = qk.shape[2]
    keys = F.normalize(qk, dim=-1)
    out = torch.zeros(*qk.shape[:3], v.shape[-1], dtype=v.dtype)
    for b, h, i, rounds in _attended(buckets, n_buckets, L, chunk_size):
        js = sorted({j for attended in rounds for j in attended if j < L and not (causal and j > i)})
        scores = torch.stack([_score(qk, keys, b, h, i, j, causal) for j in js])
        out[b, h, i] = torch.softmax(scores, 0) @ v[b, h, js]
    return out


# ----------------------------------------------------------------------------- measurements for figures
def hyperplane_collision_theory(angles: torch.Tensor) -> torch.Tensor:
    """P[h(x) = h(y)] = 1 − θ/π for b = 2 buckets (sign of one random projection)."""
    return 1.0 - angles / math.pi


def collision_probability(angles, n_buckets: int, dim: int = 64, n_trials: int = 2000, seed: int = 0) -> torch.Tensor:
    """Measured P[h(x) = h(y)] for unit vectors at each angle θ, over ``n_trials`` random rotations."""
    _check_buckets(n_buckets)
    angles = torch.as_tensor(angles, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(dim, generator=g, dtype=torch.float64), dim=0)
    u = torch.randn(dim, generator=g, dtype=torch.float64)
    u = F.normalize(u - (u @ x) * x, dim=0)                          # orthogonal to x
    ys = torch.cos(angles)[:, None] * x + torch.sin(angles)[:, None] * u
    R = torch.randn(n_trials, dim, n_buckets // 2, generator=g, dtype=torch.float64)
    hx = lsh_hash(x[None], n_buckets, n_trials, rotations=R)[:, 0]   # (n_trials,)
    hy = lsh_hash(ys, n_buckets, n_trials, rotations=R)              # (n_trials, n_angles)
    return (hy == hx[:, None]).double().mean(0)


def topk_in_bucket(qk: torch.Tensor, n_buckets: int, n_hashes: int, topk: int = 4, seed: int = 0) -> float:
    """Fraction of each query's true top-k keys (by q·k/|k|, itself excluded) that share its bucket
    in at least one round — the recall that LSH attention's quality rests on. ``qk``: (L, d)."""
    check_tensor(qk, "qk", 2, "(length, dim)")
    check_positive_int(topk, "topk")
    L = qk.shape[0]
    if topk >= L:
        raise ValueError(f"topk ({topk}) must be < length ({L})")
    scores = qk @ F.normalize(qk, dim=-1).T
    scores.fill_diagonal_(float("-inf"))
    top = scores.topk(topk, dim=-1).indices                          # (L, topk)
    h = lsh_hash(qk, n_buckets, n_hashes, seed)                      # (n_hashes, L)
    same = (h[:, top] == h[:, :, None]).any(dim=0)                   # (L, topk)
    return same.double().mean().item()
