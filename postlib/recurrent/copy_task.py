"""How far back can a segment model see? The delayed copy task, and Transformer-XL's reach.

A model trained on segments of S tokens with no memory cannot copy a token from Δ ≥ S positions back: the
token lies in another segment. Transformer-XL's memory of M states per layer lets position p of a segment see
back to the memory's start, and each layer's memory holds states that themselves saw further back, so the
reach grows with depth — "O(N × L)" in the paper (§3.2), N layers and segment length L.

* :func:`delayed_copy` — random tokens; at every position t ≥ Δ predict the token at t − Δ.
* :func:`dependency_reach` — the largest distance each position can depend on, by following the mask
  (query at p sees keys from its segment's start minus M, in every layer).
* :func:`effective_context` — train a vanilla segment model and Transformer-XL on the task for several Δ and
  report both accuracies (``postlib.train.train_on_task``, same recipe for both).
"""
from __future__ import annotations

import torch

from .._checks import check_positive_int
from ..tasks import IGNORE


def delayed_copy(n: int, length: int = 64, delay: int = 8, vocab: int = 16, seed: int = 0):
    """Inputs: ``length`` tokens uniform in 0 … vocab−1. Targets: the input ``delay`` steps earlier at every
    position t ≥ delay (−100, ignored, before). Returns inputs, targets (n, length) and the vocab size."""
    for name, value in (("n", n), ("length", length), ("delay", delay), ("vocab", vocab)):
        check_positive_int(value, name)
    if delay >= length:
        raise ValueError(f"delay must be < length so that some positions are scored, got delay={delay}, "
                         f"length={length}")
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n, length), generator=g)
    targets = torch.full_like(inputs, IGNORE)
    targets[:, delay:] = inputs[:, :-delay]
    return inputs, targets, vocab


def dependency_reach(length: int, segment_length: int, memory_length: int, n_layers: int) -> torch.Tensor:
    """For each position p < length, the largest distance p − j such that output p can depend on input j.

    One layer lets position e see back to (start of e's segment) − M; stacking layers follows that n_layers times.
    With M = 0 the reach is the offset inside the segment; with M = S it is offset + n_layers · S.
    """
    check_positive_int(length, "length")
    check_positive_int(segment_length, "segment_length")
    check_positive_int(memory_length, "memory_length", minimum=0)
    check_positive_int(n_layers, "n_layers")
    p = torch.arange(length)
    earliest = p.clone()
    for _ in range(n_layers):
        earliest = torch.clamp((earliest // segment_length) * segment_length - memory_length, min=0)
    return p - earliest


def effective_context(delays, *, segment_length: int = 8, memory_length: int | None = None, length: int = 64,
                      vocab: int = 16, n_train: int = 2000, n_test: int = 256, steps: int = 300, d_model: int = 32,
                      n_layers: int = 2, n_heads: int = 2, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                      progress: bool = False) -> list[dict]:
    """Copy accuracy vs delay for the vanilla segment model (memory 0) and Transformer-XL (memory M = S by default).

    Returns one row per (model, delay): ``{"model", "delay", "accuracy", "chance", "reach", "seconds"}`` where
    ``reach`` is the largest dependency distance the architecture allows at the segment's last position.
    """
    from ..train import train_on_task
    memory_length = segment_length if memory_length is None else memory_length
    rows = []
    for delay in delays:
        train = delayed_copy(n_train, length, delay, vocab, seed)
        test = delayed_copy(n_test, length, delay, vocab, seed + 1)
        for model, memory in (("vanilla segments", 0), ("Transformer-XL", memory_length)):
            config = dict(n_heads=n_heads, segment_length=segment_length, memory_length=memory)
            result = train_on_task("transformer_xl", train[:2], test[:2], vocab, d_model=d_model, n_layers=n_layers,
                                   steps=steps, batch_size=batch_size, lr=lr, seed=seed, device="cpu",
                                   mixer_config=config, progress=progress)
            reach = int(dependency_reach(length, segment_length, memory, n_layers)[segment_length - 1 :].max())
            rows.append(dict(model=model, delay=int(delay), accuracy=result.accuracy, chance=1.0 / vocab,
                             reach=reach, memory_length=memory, segment_length=segment_length, n_layers=n_layers,
                             seconds=result.seconds))
    return rows
