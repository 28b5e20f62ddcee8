"""Recurrent causal models: RNNs that train in parallel and decode in constant memory.

RWKV's WKV operator and RWKV-6's (part 5), and one decayed linear recurrence shared by linear
attention, RetNet's retention, RWKV-6-style gated forms and Mamba-2's SSD, plus
Transformer-XL's segment memory (part 6). Importing this package registers its mixers.
"""
# --- part 5: RWKV (wkv.py, wkv_scan.py, rwkv.py; RWKV-6's operator in rwkv6.py) ---
from . import rwkv, wkv  # noqa: F401  (rwkv registers the mixer "rwkv"; the operator is postlib.recurrent.wkv.wkv)

# --- part 6: retention, RetNet, Transformer-XL ---
from .recurrence import decayed_linear_recurrence
from .retention import decay_matrix, forgetting_curve, retention, retnet_gammas
from . import retnet  # noqa: F401  (registers "retnet")
from . import transformer_xl  # noqa: F401  (registers "transformer_xl")
