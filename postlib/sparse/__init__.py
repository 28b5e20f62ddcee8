"""Sparse attention: Longformer, BigBird and LongNet.

Keep softmax, but let each token look at only a few others: a sliding window, global
tokens, random blocks, dilated segments. ``attention_mask`` is the definition of each
pattern; ``sparse_attention`` computes attention under it without ever building the
L × L scores (block-sparse PyTorch, or a Triton kernel); ``dilated_attention`` is
LongNet's actual mixture of dilated branches. Importing this package registers the
mixers ``"longformer"``, ``"bigbird"`` and ``"longnet"``.
"""
from .masks import KINDS, PARAMETERS, Pattern, attention_mask, make_pattern
from .attention import blocked_attention, masked_attention, sparse_attention, sparse_attention_reference
from .longnet import branch_counts, dilated_attention, dilated_attention_reference
from .analysis import path_lengths, pattern_cost, reach_matrix, receptive_field
from . import mixers  # noqa: F401  (registers "longformer", "bigbird", "longnet")

__all__ = ["KINDS", "PARAMETERS", "Pattern", "attention_mask", "make_pattern", "blocked_attention",
           "masked_attention", "sparse_attention", "sparse_attention_reference", "branch_counts", "dilated_attention",
           "dilated_attention_reference", "path_lengths", "pattern_cost", "reach_matrix", "receptive_field"]
