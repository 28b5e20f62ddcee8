"""Recurrent causal models: RNNs that train in parallel and decode in constant memory.

RWKV's WKV operator (part 5), and one decayed linear recurrence shared by linear
attention, RetNet's retention, RWKV-6-style gated forms and Mamba-2's SSD, plus
Transformer-XL's segment memory (part 6). Importing this package registers its mixers.
"""
# --- part 5: RWKV (wkv.py, rwkv.py) ---
from . import rwkv  # noqa: F401  (registers the mixer "rwkv")
from .wkv import WKVState, init_wkv_state, wkv, wkv_definition, wkv_weights  # noqa: F401

# --- part 6: retention, RetNet, Transformer-XL ---
