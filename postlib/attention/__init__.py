"""Attention: the softmax baseline and its efficient and approximate relatives.

All functions take tensors of shape ``(batch, heads, length, head_dim)``.
"""
from .softmax import attention_weights, causal_mask, softmax_attention
from .flash import flash_attention
from . import mixers  # noqa: F401  (registers "softmax")
from .linear import linear_attention, linear_attention_reference
from .performer import performer_attention
from .linformer import linformer_attention
from .reformer import lsh_attention
from . import approx_mixers  # noqa: F401  (registers "linear", "performer", "linformer", "reformer", "lola")

__all__ = ["attention_weights", "causal_mask", "softmax_attention", "flash_attention",
           "linear_attention", "linear_attention_reference", "performer_attention", "linformer_attention",
           "lsh_attention"]
