"""One WKV channel, token by token: the data behind the chapter's and the dashboard's RWKV animations.

``wkv_trace`` runs the RNN (``wkv_step``, the reference loop) on one channel and records, after each
token t, what the state holds and what the output is made of:

* the running state (shift p, numerator a, denominator b): the sums e^{p}·a and e^{p}·b that the
  kernel carries, reported as log|numerator|, its sign, and log(denominator);
* the unnormalised weight of every earlier token in output t, e^{k_i − (t−1−i)w} (and e^{u + k_t}
  for the token itself) — the row of ``wkv_weights`` before normalisation — and the output wkv_t.

Everything is computed in float64 and returned as numpy arrays (the figures' input).
"""
from __future__ import annotations

import numpy as np
import torch

from .wkv import init_wkv_state, wkv_log_weights, wkv_step


def wkv_trace(w: float, u: float, k, v) -> dict:
    """Trace one channel with decay ``w`` (> 0), bonus ``u``, keys ``k`` and values ``v`` (1-D, same length).

    Returns a dict of numpy arrays: ``output`` (L,), ``log_num_abs``, ``num_sign``, ``log_den`` (L,) — the
    state's sums after token t (decayed to t, before the next token) — and ``log_weights`` (L, L): row t
    holds log e^{k_i − (t−1−i)w} for i < t, u + k_t at i = t and −inf after t.
    """
    k = torch.as_tensor(k, dtype=torch.float64).flatten()
    v = torch.as_tensor(v, dtype=torch.float64).flatten()
    if k.shape != v.shape or k.numel() == 0:
        raise ValueError(f"k and v must be non-empty 1-D sequences of the same length, got {tuple(k.shape)} "
                         f"and {tuple(v.shape)}")
    if not w > 0:
        raise ValueError(f"w must be > 0 (the decay rate), got {w}")
    w_t = torch.tensor([float(w)], dtype=torch.float64)
    u_t = torch.tensor([float(u)], dtype=torch.float64)
    state = init_wkv_state(1, 1, dtype=torch.float64)
    outs, log_num, sign, log_den = [], [], [], []
    for t in range(k.numel()):
        out, state = wkv_step(w_t, u_t, k[t].view(1, 1), v[t].view(1, 1), state)
        outs.append(float(out))
        num, den, shift = (float(s) for s in state)
        log_num.append(np.log(abs(num)) + shift if num != 0 else -np.inf)
        sign.append(np.sign(num))
        log_den.append(np.log(den) + shift)
    log_weights = wkv_log_weights(w_t, u_t, k.view(1, -1, 1))[0, 0].numpy()
    return dict(output=np.array(outs), log_num_abs=np.array(log_num), num_sign=np.array(sign),
                log_den=np.array(log_den), log_weights=log_weights, w=float(w), u=float(u),
                k=k.numpy(), v=v.numpy())
