"""One backbone for every mixer: pre-norm residual blocks, like nanoGPT.

    x ← x + Mixer(Norm(x))
    x ← x + MLP(Norm(x))

``SequenceModel`` stacks these blocks on a token embedding and ends in a
language-modelling head (a logit per position) or a classification head
(mean-pooled, one logit vector per sequence). Every chapter trains this same
model and only swaps the mixer's name, so differences in results come from
the mixer alone.

Hybrids. ``mixer`` may also be a list of names, one per layer — e.g.
``["mamba", "mamba", "softmax", "mamba"]`` — which is how Jamba
(Lieber et al. 2024: a few attention layers among many Mamba layers) and Based
(Arora et al. 2024: linear attention beside sliding-window attention) are
built. :func:`hybrid_stack` gives those two recipes for any depth. A causal
stack also decodes token by token (``init_state`` / ``step``), and stepping
reproduces ``forward`` (``tests/lab/test_hybrid_models.py``);
:func:`state_nbytes` measures the bytes that decoding state holds.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_tensor
from .registry import build_mixer, list_mixers, mixer_info

# Families whose mixers carry order information themselves (a decay, a kernel over positions, a
# convolution). A stack with at least one such layer needs no absolute positions: Jamba drops them
# because its Mamba layers provide order (Lieber et al. 2024, §6.4).
ORDERED_FAMILIES = ("ssm", "recurrent", "mixing")
HYBRIDS = ("jamba", "based")


def hybrid_stack(kind: str, n_layers: int = 4) -> list[str]:
    """The mixer names, one per layer, of a small hybrid of ``kind``:

    * ``"jamba"`` — Mamba layers with one softmax-attention layer in the middle (Jamba interleaves one
      attention layer per eight; at four layers that is ``["mamba", "mamba", "softmax", "mamba"]``);
    * ``"based"`` — linear attention alternating with sliding-window attention (Based's two mixers;
      the sliding window is the ``"longformer"`` mixer). Refused with a clear error where that mixer
      is not registered.
    """
    check_choice(kind, "kind", HYBRIDS)
    check_positive_int(n_layers, "n_layers", minimum=2)
    if kind == "jamba":
        stack = ["mamba"] * n_layers
        stack[n_layers // 2] = "softmax"
        return stack
    if "longformer" not in list_mixers():
        raise ValueError("the 'based' hybrid needs the sliding-window mixer 'longformer', which is not registered "
                         f"here (registered: {list_mixers()})")
    return ["linear" if i % 2 == 0 else "longformer" for i in range(n_layers)]


def stack_label(mixers: str | Sequence[str]) -> str:
    """A short name for a stack: ``"mamba"`` or ``"mamba+mamba+softmax+mamba"``."""
    return mixers if isinstance(mixers, str) else "+".join(mixers)


def _check_stack(mixer, n_layers) -> list[str]:
    """One validated mixer name per layer, from a name (repeated ``n_layers`` times) or a list."""
    if isinstance(mixer, str):
        mixer_info(mixer)  # a clear error for an unknown name
        return [mixer] * check_positive_int(2 if n_layers is None else n_layers, "n_layers")
    if not isinstance(mixer, Sequence) or len(mixer) == 0:
        raise ValueError(f"mixer must be a mixer name or a non-empty list of names (one per layer), got {mixer!r}")
    names = list(mixer)
    known = list_mixers()
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"mixer[{i}] must be a mixer name (str), got {name!r}")
        if name not in known:
            raise ValueError(f"mixer[{i}] = {name!r} is not a registered mixer; known: {known}")
    if n_layers is not None and n_layers != len(names):
        raise ValueError(f"n_layers={n_layers} but the mixer list has {len(names)} layers; "
                         "give one name per layer (or leave n_layers out)")
    return names


def needs_positions(mixers: Sequence[str]) -> bool:
    """True when no layer of the stack carries order information itself (see ``ORDERED_FAMILIES``),
    so the model needs learned absolute positions (``max_length``) to tell positions apart."""
    return not any(mixer_info(m).family in ORDERED_FAMILIES for m in mixers)


def state_nbytes(state) -> int:
    """Bytes held by the tensors of a decoding state (any nesting of dicts, lists and tuples)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(v) for v in state)
    return 0


class MLP(nn.Module):
    def __init__(self, d_model: int, expansion: int = 4, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, expansion * d_model), nn.GELU(),
                                 nn.Linear(expansion * d_model, d_model), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Pre-norm residual block around any registered mixer."""

    def __init__(self, mixer: str, d_model: int, mlp_expansion: int = 4, dropout: float = 0.0, **mixer_config):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.mixer = build_mixer(mixer, d_model, **mixer_config)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, mlp_expansion, dropout) if mlp_expansion > 0 else None

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x

    def step(self, x_t, state):
        y, state = self.mixer.step(self.norm1(x_t), state)
        x_t = x_t + y
        if self.mlp is not None:
            x_t = x_t + self.mlp(self.norm2(x_t))
        return x_t, state


class SequenceModel(nn.Module):
    """Embedding → N blocks → final norm → head.

    Args:
        mixer: a name from ``postlib.list_mixers()`` (every layer), or a list of names, one per layer
            (a hybrid, e.g. ``hybrid_stack("jamba")``).
        vocab_size: number of input tokens.
        d_model, n_layers: width and depth (``n_layers`` defaults to 2 for a name and to the list's
            length for a list; a different value is refused).
        task: ``"lm"`` (logits per position, needs causal mixers) or
            ``"classify"`` (mean-pooled logits per sequence).
        n_classes: output size for ``"classify"`` (defaults to vocab_size for ``"lm"``).
        max_length: if given, adds learned absolute positions (mixers without
            built-in order information — e.g. softmax attention — need them).
        mixer_config: passed to ``build_mixer``: one dict for every layer, or a list of dicts, one per layer.
    """

    def __init__(self, mixer: str | Sequence[str], vocab_size: int, d_model: int = 64, n_layers: int | None = None,
                 task: str = "lm", n_classes: int | None = None, max_length: int | None = None,
                 mlp_expansion: int = 4, dropout: float = 0.0, mixer_config: dict | Sequence[dict] | None = None):
        super().__init__()
        check_positive_int(vocab_size, "vocab_size")
        self.mixers = _check_stack(mixer, n_layers)
        self.task = check_choice(task, "task", ("lm", "classify"))
        if task == "lm":
            for i, name in enumerate(self.mixers):
                if not mixer_info(name).causal:
                    where = "" if isinstance(mixer, str) else f" (layer {i})"
                    raise ValueError(f"task='lm' needs a causal mixer; {name!r}{where} is not causal "
                                     "(use task='classify')")
        configs = self._layer_configs(mixer_config)
        self.mixer_name = stack_label(mixer)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_length, d_model) if max_length else None
        self.blocks = nn.ModuleList(Block(name, d_model, mlp_expansion, dropout, **cfg)
                                    for name, cfg in zip(self.mixers, configs))
        self.norm = nn.LayerNorm(d_model)
        out = vocab_size if task == "lm" else check_positive_int(n_classes or 0, "n_classes")
        self.head = nn.Linear(d_model, out)

    def _layer_configs(self, mixer_config) -> list[dict]:
        if mixer_config is None:
            return [{} for _ in self.mixers]
        if isinstance(mixer_config, dict):
            return [dict(mixer_config) for _ in self.mixers]
        configs = list(mixer_config)
        if len(configs) != len(self.mixers) or not all(isinstance(c, dict) for c in configs):
            raise ValueError(f"mixer_config must be a dict (every layer) or a list of {len(self.mixers)} dicts "
                             f"(one per layer), got {mixer_config!r}")
        return configs

    def _check_tokens(self, tokens: torch.Tensor, ndim: int, shape_doc: str) -> None:
        check_tensor(tokens, "tokens", ndim, shape_doc, floating=False)
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be an integer tensor of shape {shape_doc}, got {tokens.dtype}")
        vocab = self.embed.num_embeddings
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ValueError(f"tokens must be ids in [0, vocab_size={vocab}), got values from {int(tokens.min())} "
                             f"to {int(tokens.max())}")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (batch, length) int64 -> logits (batch, length, vocab) or (batch, n_classes)."""
        self._check_tokens(tokens, 2, "(batch, length)")
        if tokens.shape[1] == 0:
            raise ValueError(f"tokens must have length >= 1, got shape {tuple(tokens.shape)}")
        x = self.embed(tokens)
        if self.pos is not None:
            if tokens.shape[1] > self.pos.num_embeddings:
                raise ValueError(f"tokens has length {tokens.shape[1]} > max_length {self.pos.num_embeddings}")
            x = x + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if self.task == "classify":
            x = x.mean(dim=1)
        return self.head(x)

    def init_state(self, batch_size: int, device=None, dtype=None) -> dict:
        """The decoding state of a causal (``task="lm"``) model: the position and every layer's mixer state."""
        if self.task != "lm":
            raise NotImplementedError("only a task='lm' model decodes token by token (a classifier pools the "
                                      "whole sequence)")
        device = device or self.embed.weight.device
        dtype = dtype or self.embed.weight.dtype
        return {"position": 0,
                "layers": [b.mixer.init_state(batch_size, device=device, dtype=dtype) for b in self.blocks]}

    def step(self, tokens_t: torch.Tensor, state: dict):
        """One token per sequence, ``tokens_t`` (batch,) -> (logits (batch, vocab), new state).
        Stepping through a sequence gives ``forward``'s logits (``tests/lab/test_hybrid_models.py``)."""
        self._check_tokens(tokens_t, 1, "(batch,)")
        if not isinstance(state, dict) or "layers" not in state:
            raise TypeError("state must come from SequenceModel.init_state(batch_size)")
        t = state["position"]
        x = self.embed(tokens_t)
        if self.pos is not None:
            if t >= self.pos.num_embeddings:
                raise ValueError(f"step at position {t} but max_length is {self.pos.num_embeddings}")
            x = x + self.pos.weight[t]
        layers = []
        for block, layer_state in zip(self.blocks, state["layers"]):
            x, layer_state = block.step(x, layer_state)
            layers.append(layer_state)
        return self.head(self.norm(x)), {"position": t + 1, "layers": layers}

    @torch.no_grad()
    def decoding_state_bytes(self, tokens: torch.Tensor) -> int:
        """Bytes of the state the model holds after reading ``tokens`` (batch, length) — what it must keep to
        predict the next token: a fixed-size recurrent state, or a KV cache that grows with the length.
        Measured by stepping, so every mixer's real ``init_state``/``step`` state is counted."""
        self._check_tokens(tokens, 2, "(batch, length)")
        state = self.init_state(tokens.shape[0])
        for t in range(tokens.shape[1]):
            _, state = self.step(tokens[:, t], state)
        return state_nbytes(state["layers"])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
