"""One backbone for every mixer: pre-norm residual blocks, like nanoGPT.

    x ← x + Mixer(Norm(x))
    x ← x + MLP(Norm(x))

``SequenceModel`` stacks these blocks on a token embedding and ends in a
language-modelling head (a logit per position) or a classification head
(mean-pooled, one logit vector per sequence). Every chapter trains this same
model and only swaps the mixer's name, so differences in results come from
the mixer alone.
"""
from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_positive_int, check_tensor
from .registry import build_mixer, mixer_info


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
    """Embedding → N blocks of ``mixer`` → final norm → head.

    Args:
        mixer: a name from ``postlib.list_mixers()``.
        vocab_size: number of input tokens.
        d_model, n_layers: width and depth.
        task: ``"lm"`` (logits per position, needs a causal mixer) or
            ``"classify"`` (mean-pooled logits per sequence).
        n_classes: output size for ``"classify"`` (defaults to vocab_size for ``"lm"``).
        max_length: if given, adds learned absolute positions (mixers without
            built-in order information — e.g. softmax attention — need them).
        mixer_config: passed to ``build_mixer``.
    """

    def __init__(self, mixer: str, vocab_size: int, d_model: int = 64, n_layers: int = 2, task: str = "lm",
                 n_classes: int | None = None, max_length: int | None = None, mlp_expansion: int = 4,
                 dropout: float = 0.0, mixer_config: dict | None = None):
        super().__init__()
        check_positive_int(vocab_size, "vocab_size")
        check_positive_int(n_layers, "n_layers")
        self.task = check_choice(task, "task", ("lm", "classify"))
        if task == "lm" and not mixer_info(mixer).causal:
            raise ValueError(f"task='lm' needs a causal mixer; {mixer!r} is not causal (use task='classify')")
        self.mixer_name = mixer
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_length, d_model) if max_length else None
        self.blocks = nn.ModuleList(
            Block(mixer, d_model, mlp_expansion, dropout, **(mixer_config or {})) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        out = vocab_size if task == "lm" else check_positive_int(n_classes or 0, "n_classes")
        self.head = nn.Linear(d_model, out)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (batch, length) int64 -> logits (batch, length, vocab) or (batch, n_classes)."""
        check_tensor(tokens, "tokens", 2, "(batch, length)", floating=False)
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be an integer tensor of shape (batch, length), got {tokens.dtype}")
        vocab = self.embed.num_embeddings
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ValueError(f"tokens must be ids in [0, vocab_size={vocab}), got values from {int(tokens.min())} "
                             f"to {int(tokens.max())}")
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

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
