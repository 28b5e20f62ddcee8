"""Small experiments behind the mixing chapter and its dashboard page (data in, numbers out; no plotting).

* ``lagged_copy`` — a toy task whose solution is *positional*: predict the token seen ``lag`` steps
  ago. A gMLP solves it with its spatial weights alone, so the trained W shows the rule: a band on
  the lag-th subdiagonal (``train_gmlp_lagged_copy``).
* ``recall_comparison`` — multi-query associative recall (MQAR, ``postlib.tasks``) for several mixers
  through the same backbone and training loop: the *content*-based task that fixed token mixing
  (gMLP's W, ConvMixer's kernel) cannot solve and attention can.
* ``digits_comparison`` — the 2-D ConvMixer and a softmax patch-Transformer of about the same size on
  scikit-learn's digits, through the same training loop.
"""
from __future__ import annotations

import torch

from .._checks import check_positive_int
from ..tasks import IGNORE


def lagged_copy(n: int, length: int = 32, lag: int = 3, vocab: int = 16, seed: int = 0):
    """Random tokens; the target at position t is the input at t − lag (ignored for t < lag).
    Returns inputs, targets (n, length) int64 and the vocabulary size."""
    for name, val in (("n", n), ("length", length), ("lag", lag), ("vocab", vocab)):
        check_positive_int(val, name)
    if lag >= length:
        raise ValueError(f"lag ({lag}) must be < length ({length})")
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (n, length), generator=g)
    targets = torch.full_like(inputs, IGNORE)
    targets[:, lag:] = inputs[:, :-lag]
    return inputs, targets, vocab


def train_gmlp_lagged_copy(length: int = 32, lag: int = 3, d_model: int = 32, steps: int = 300, seed: int = 0,
                           n_train: int = 2048, n_test: int = 256):
    """Train a one-layer gMLP (no MLP: the spatial gating unit is the only token mixer) on ``lagged_copy``.

    Returns ``(result, W_init, W_trained)``: the ``postlib.train.TrainResult`` and the spatial weights
    (length × length, row t = the weights output t gives to tokens 0..t) before and after training.
    """
    from ..models import SequenceModel
    from ..train import seed_everything, train_on_task
    train_x, train_y, vocab = lagged_copy(n_train, length, lag, seed=seed)
    test_x, test_y, _ = lagged_copy(n_test, length, lag, seed=seed + 1)
    config = {"max_len": length}
    seed_everything(seed)       # train_on_task seeds the same way, so this is the model it starts from
    w_init = SequenceModel("gmlp", vocab, d_model=d_model, n_layers=1, mixer_config=config) \
        .blocks[0].mixer.sgu.spatial_weight(length).detach().clone()
    result = train_on_task("gmlp", (train_x, train_y), (test_x, test_y), vocab, d_model=d_model, n_layers=1,
                           steps=steps, seed=seed, mixer_config=config, lr=1e-2)
    w_trained = result.model.blocks[0].mixer.sgu.spatial_weight(length).detach().clone()
    return result, w_init, w_trained


def band_mass(W: torch.Tensor, offset: int) -> float:
    """Share of |W|'s mass on the diagonal ``offset`` below the main one (how much W learned a fixed lag)."""
    W = W.abs()
    return float(W.diagonal(-offset).sum() / W.sum())


RECALL_MIXERS = ("softmax", "rwkv", "gmlp", "convmixer")


def recall_comparison(mixers=RECALL_MIXERS, *, n_pairs: int = 6, n_keys: int = 24, n_train: int = 4000,
                      n_test: int = 256, d_model: int = 64, n_layers: int = 2, steps: int = 300, batch_size: int = 64,
                      lr: float = 3e-3, heads: int = 2, seed: int = 0) -> list[dict]:
    """MQAR accuracy for each mixer, same backbone and recipe (``postlib.train.train_on_task``; the kernel
    chapter's settings by default, under which softmax attention solves the task).

    Sequences: n_pairs key-value pairs, then n_pairs queries (length 3·n_pairs); chance is 1/n_keys.
    Every model gets learned positions (softmax has no order of its own); gMLP gets max_len = the
    length, softmax ``heads`` heads, RWKV its time mix alone (the backbone's MLP is its channel mix).
    """
    from ..tasks import associative_recall
    from ..train import train_on_task
    kw = dict(n_pairs=n_pairs, n_keys=n_keys, n_values=n_keys)
    train_x, train_y, vocab = associative_recall(n_train, seed=seed, **kw)
    test_x, test_y, _ = associative_recall(n_test, seed=seed + 1, **kw)
    length = train_x.shape[1]
    # RWKV's time mix alone: the backbone's MLP already plays its channel mix's part (and the sizes match).
    configs = {"gmlp": {"max_len": length}, "softmax": {"n_heads": heads}, "rwkv": {"channel_mix": False}}
    rows = []
    for name in mixers:
        result = train_on_task(name, (train_x, train_y), (test_x, test_y), vocab, d_model=d_model,
                               n_layers=n_layers, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                               mixer_config=configs.get(name), max_length=length, device="cpu")
        rows.append(dict(name=name, accuracy=result.accuracy, parameters=result.parameters,
                         seconds=result.seconds, steps=steps, n_pairs=n_pairs, n_keys=n_keys, length=length,
                         final_loss=result.losses[-1][1]))
    return rows


def digits_comparison(*, epochs: int = 20, seconds: float | None = None, seed: int = 0,
                      convmixer: dict | None = None, transformer: dict | None = None) -> list:
    """Train ``ConvMixer2d`` and a ``PatchTransformer`` of about the same size on the digits; returns
    the two ``ImageTrainResult`` (accuracy, curve per epoch, parameters, seconds)."""
    from .vision import ConvMixer2d, PatchTransformer, load_digits_split, train_image_classifier
    data = load_digits_split(seed=seed)
    torch.manual_seed(seed)
    cm = ConvMixer2d(**(convmixer or dict(dim=48, depth=4, kernel_size=3, patch_size=2)))
    torch.manual_seed(seed)
    tf = PatchTransformer(**(transformer or dict(dim=32, depth=2, patch_size=2, mlp_expansion=1)))
    return [train_image_classifier(cm, data, name="ConvMixer", epochs=epochs, seconds=seconds, seed=seed),
            train_image_classifier(tf, data, name="softmax (patch Transformer)", epochs=epochs, seconds=seconds,
                                   seed=seed)]
