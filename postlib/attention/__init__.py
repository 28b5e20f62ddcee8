"""Attention: the softmax baseline and its efficient and approximate relatives.

All functions take tensors of shape ``(batch, heads, length, head_dim)``.
"""
from .softmax import attention_weights, causal_mask, softmax_attention
from .flash import flash_attention
from . import mixers  # noqa: F401  (registers "softmax")

__all__ = ["attention_weights", "causal_mask", "softmax_attention", "flash_attention"]
