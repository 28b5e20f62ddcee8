"""Interpretability: what a trained Mamba's state forgets and what it stores.

A small Mamba (``postlib.models.SequenceModel``) is trained on selective copying
(``postlib.tasks.selective_copying``: a few coloured tokens among noise, recalled after a separator).
Two readings of the trained model, both from the model's own parameters and states:

* **What decays.** The selective scan keeps ``exp(Δ_t·A)`` of its state at step t (Gu & Dao 2023,
  Eq. 2 with ZOH): a large Δ_t resets the state towards the current input, a small one lets the token
  pass unseen (the paper's §3.5.2 "selection" reading). :func:`token_retention` reads Δ_t from the
  trained layer on the test inputs (a hook on the layer's ``x_proj``, then the layer's own ``dt_proj``)
  and returns, per kind of token, the fraction of state kept, ``mean exp(Δ_t·A)``;
  :func:`channel_deltas` compares every channel's Δ at noise and at colour tokens.
* **What the state stores.** :func:`collect_states` runs the model token by token with each block's
  ``step`` (the recurrent view; its logits equal ``model(tokens)``, tested), keeping every layer's
  SSM state at the separator. A linear (ridge) probe, :func:`ridge_probe`, then decodes from that
  state the colour of each memorised token, against the same probe on an untrained model's state and
  chance (:func:`memory_probe`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_positive_int, check_tensor

SELECTIVE_RATIO = 1.5    # a channel whose mean Δ at colours and at noise differ by more than this factor


def train_copy_model(*, length: int = 16, n_memorize: int = 4, n_colors: int = 4, n_train: int = 2000,
                     steps: int = 300, d_model: int = 32, n_layers: int = 2, d_state: int = 8, batch_size: int = 32,
                     lr: float = 1e-2, seed: int = 0, device="cpu"):
    """Train Mamba on selective copying with ``postlib.train.train_on_task``; returns its ``TrainResult``
    (``.model`` is the trained model, ``.accuracy`` the test accuracy on 256 held-out sequences)."""
    from ..tasks import selective_copying
    from ..train import train_on_task

    train = selective_copying(n_train, length, n_memorize, n_colors, seed=seed)
    test = selective_copying(256, length, n_memorize, n_colors, seed=seed + 1)
    return train_on_task("mamba", train[:2], test[:2], train[2], d_model=d_model, n_layers=n_layers, steps=steps,
                         batch_size=batch_size, lr=lr, seed=seed, device=device, mixer_config={"d_state": d_state})


def _mamba_layers(model) -> list:
    layers = [b.mixer for b in model.blocks]
    if not all(hasattr(m, "x_proj") and hasattr(m, "dt_proj") and hasattr(m, "A_log") for m in layers):
        raise TypeError("the probes read Mamba's Δ and state: every block's mixer must be 'mamba'")
    return layers


def layer_deltas(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Δ_t of every layer on ``tokens`` (batch, L): a list of (batch, L, d_inner) tensors (after softplus)."""
    check_tensor(tokens, "tokens", 2, "(batch, length)", floating=False)
    layers = _mamba_layers(model)
    captured: list[torch.Tensor] = []
    hooks = [m.x_proj.register_forward_hook(lambda _m, _i, out: captured.append(out)) for m in layers]
    try:
        with torch.no_grad():
            model(tokens)
    finally:
        for h in hooks:
            h.remove()
    deltas = []
    for m, dbc in zip(layers, captured):     # dbc = x_proj(x): (batch, L, dt_rank + 2N); x_proj is called once per layer
        dt = dbc[..., :m.dt_rank]
        deltas.append(F.softplus(F.linear(dt, m.dt_proj.weight) + m.dt_proj.bias))
    return deltas


def token_kinds(tokens: torch.Tensor, length: int, n_colors: int) -> dict[str, torch.Tensor]:
    """Boolean masks of the kinds of position in selective copying: noise, colour, separator, answer slots."""
    pos = torch.arange(tokens.shape[1])[None].expand_as(tokens)
    before = pos < length
    return {"noise": before & (tokens == 0), "colour": before & (tokens >= 1) & (tokens <= n_colors),
            "separator": pos == length, "answer slots": pos > length}


def token_retention(model, tokens: torch.Tensor, length: int, n_colors: int) -> list[dict]:
    """Per layer and kind of token: mean Δ_t and the mean fraction of state kept, exp(Δ_t·A) over
    channels and state dimensions. One row per (layer, kind)."""
    rows = []
    kinds = token_kinds(tokens, length, n_colors)
    for layer, (m, delta) in enumerate(zip(_mamba_layers(model), layer_deltas(model, tokens)), start=1):
        A = -torch.exp(m.A_log.detach())                                  # (d_inner, N)
        for kind, mask in kinds.items():
            d = delta[mask]                                              # (positions, d_inner)
            if d.numel() == 0:
                continue
            kept = torch.exp(d[..., None] * A).mean().item()
            rows.append({"layer": layer, "kind": kind, "mean_delta": d.mean().item(), "retention": kept,
                         "positions": int(mask.sum())})
    return rows


def channel_deltas(model, tokens: torch.Tensor, length: int, n_colors: int) -> list[dict]:
    """Per layer: every channel's mean Δ_t at noise tokens and at colour tokens, and how many channels are
    *selective* (their two means differ by more than 1.5× either way). One dict per layer."""
    kinds = token_kinds(tokens, length, n_colors)
    out = []
    for layer, delta in enumerate(layer_deltas(model, tokens), start=1):
        noise, colour = delta[kinds["noise"]].mean(0), delta[kinds["colour"]].mean(0)
        ratio = colour / noise
        out.append({"layer": layer, "noise": noise.tolist(), "colour": colour.tolist(),
                    "selective": int(((ratio > SELECTIVE_RATIO) | (ratio < 1 / SELECTIVE_RATIO)).sum())})
    return out


def collect_states(model, tokens: torch.Tensor, at: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``model`` token by token with each block's ``step`` up to position ``at`` (inclusive).

    Returns (the SSM state of every layer after token ``at``, flattened to (batch, d_inner·N)),
    and the logits of every step (batch, at + 1, vocab), which equal ``model(tokens)[:, :at + 1]``.
    """
    check_tensor(tokens, "tokens", 2, "(batch, length)", floating=False)
    if not 0 <= at < tokens.shape[1]:
        raise ValueError(f"at must be a position in [0, {tokens.shape[1]}), got {at}")
    layers = _mamba_layers(model)
    batch = tokens.shape[0]
    dev = model.embed.weight.device
    states = [m.init_state(batch, device=dev) for m in layers]
    logits = []
    with torch.no_grad():
        for t in range(at + 1):
            x = model.embed(tokens[:, t])
            if model.pos is not None:
                x = x + model.pos.weight[t]
            for i, block in enumerate(model.blocks):
                x, states[i] = block.step(x, states[i])
            logits.append(model.head(model.norm(x)))
    return [s["ssm"].reshape(batch, -1) for s in states], torch.stack(logits, 1)


def ridge_probe(x_train, y_train, x_test, y_test, n_classes: int, ridge: float = 1.0) -> float:
    """Test accuracy of a linear probe fitted in closed form (ridge regression onto one-hot labels)."""
    check_positive_int(n_classes, "n_classes")
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xtr = torch.cat([(x_train - mean) / std, torch.ones(len(x_train), 1, dtype=x_train.dtype)], 1).double()
    xte = torch.cat([(x_test - mean) / std, torch.ones(len(x_test), 1, dtype=x_test.dtype)], 1).double()
    onehot = F.one_hot(y_train, n_classes).double()
    n, f = xtr.shape
    if n < f:   # the dual form, the same weights: Xᵀ(XXᵀ + λI)⁻¹Y solves an n × n system instead of f × f
        w = xtr.T @ torch.linalg.solve(xtr @ xtr.T + ridge * torch.eye(n, dtype=torch.float64), onehot)
    else:
        w = torch.linalg.solve(xtr.T @ xtr + ridge * torch.eye(f, dtype=torch.float64), xtr.T @ onehot)
    return (xte @ w).argmax(1).eq(y_test).double().mean().item()


def memory_probe(model, *, length: int, n_memorize: int, n_colors: int, n: int = 1200, seed: int = 7,
                 ridge: float = 1.0, untrained_seed: int = 0) -> dict:
    """Decode each memorised colour from every layer's state at the separator, trained vs untrained.

    Returns ``{"trained": [[acc per slot] per layer], "untrained": [...], "chance": 1/n_colors, ...}``;
    the untrained model has the trained one's architecture, freshly initialised from ``untrained_seed``.
    Colours are labelled 0..n_colors-1; two thirds of the ``n`` sequences train the probe.
    """
    from ..models import SequenceModel
    from ..tasks import selective_copying

    tokens, _, vocab = selective_copying(n, length, n_memorize, n_colors, seed=seed)
    colours = tokens[:, :length][tokens[:, :length] > 0].reshape(n, n_memorize) - 1     # in order of position
    split = 2 * n // 3
    torch.manual_seed(untrained_seed)
    layer0 = model.blocks[0].mixer
    fresh = SequenceModel("mamba", vocab, d_model=model.embed.embedding_dim, n_layers=len(model.blocks),
                          max_length=None if model.pos is None else model.pos.num_embeddings,
                          mixer_config={"d_state": layer0.d_state}).to(model.embed.weight.device).eval()
    out = {"chance": 1.0 / n_colors, "slots": list(range(1, n_memorize + 1)), "n_train": split,
           "n_test": n - split, "features": layer0.d_inner * layer0.d_state}
    for name, m in (("trained", model), ("untrained", fresh)):
        states, _ = collect_states(m, tokens.to(m.embed.weight.device), at=length)
        out[name] = [[ridge_probe(s[:split].cpu(), colours[:split, i], s[split:].cpu(), colours[split:, i], n_colors,
                                  ridge) for i in range(n_memorize)] for s in states]
    return out
