"""The RWKV-4 block (Peng et al. 2023) as the mixer ``"rwkv"``: an RNN that trains like a Transformer.

Time mixing (the token mixer) — every projection sees a learned blend of this token and the last
("token shift"), per channel:

    r_t = W_r (μ_r ⊙ x_t + (1 − μ_r) ⊙ x_{t−1}),  k_t = W_k (μ_k ⊙ x_t + ...),  v_t = W_v (μ_v ⊙ x_t + ...)
    o_t = W_o (σ(r_t) ⊙ wkv_t)                      wkv: ``postlib.recurrent.wkv`` (decay w = e^{time_decay}, bonus u)

Channel mixing (RWKV's feed-forward, also token-shifted):

    r'_t = W'_r (μ'_r ⊙ x_t + ...),  k'_t = W'_k (μ'_k ⊙ x_t + ...),  o'_t = σ(r'_t) ⊙ W'_v max(k'_t, 0)²

The mixer returns ``TM(x) + CM(LN(x + TM(x)))``: both halves of an RWKV block minus its input, so the
shared backbone's residual (``x + mixer(norm(x))``) rebuilds the block. The official block feeds the
channel mix LN(residual + TM); inside our backbone the mixer only sees norm(residual), so its channel
mix sees LN(norm(residual) + TM) — the one difference, and why ``TimeMix``/``ChannelMix`` are also
exposed alone (tests/recurrent/test_rwkv_peers.py checks them against the ``rwkv`` package).

Initialisation follows the official RWKV-4 code for the per-channel parameters (layer ``layer_id`` of
``n_layers``): decay time_decay_c = −5 + 8·(c/(C−1))^{0.7 + 1.3·l/(n−1)}, so channel decays w span
e^{−5} … e^{3} (memories from hundreds of tokens down to one); bonus time_first = ln 0.3 plus a
(−0.5, 0, 0.5) zigzag; token-shift mixes μ = (c/C)^{1 − l/n}. The official code zero-initialises the
key, receptance and output projections (each block starts as the identity); here they keep PyTorch's
default so an untrained block already mixes (the registry tests rely on it).

``step`` carries a constant-size state — the last input of each half and the WKV sums
(numerator, denominator, running maximum) — so decoding memory does not grow with the context
(``postlib/bench/experiments/rwkv_decode.py`` measures it against a softmax KV cache).
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive_int
from ..registry import Mixer, register_mixer
from .wkv import BACKENDS, WKVState, compute_dtype, init_wkv_state, wkv, wkv_step


def rwkv4_decay_init(channels: int, layer_id: int = 0, n_layers: int = 1) -> torch.Tensor:
    """time_decay per channel (the official RWKV-4 schedule); the decay rate is w = exp(time_decay)."""
    ratio_0_to_1 = layer_id / (n_layers - 1) if n_layers > 1 else 0.0
    c = torch.arange(channels, dtype=torch.float64) / max(channels - 1, 1)
    return (-5 + 8 * c ** (0.7 + 1.3 * ratio_0_to_1)).float()


def rwkv4_bonus_init(channels: int) -> torch.Tensor:
    """time_first (the bonus u): ln 0.3 plus a zigzag of (−0.5, 0, 0.5) over the channels."""
    zigzag = torch.tensor([((i + 1) % 3 - 1) * 0.5 for i in range(channels)])
    return math.log(0.3) + zigzag


def _token_shift_init(channels: int, power: float) -> torch.Tensor:
    return (torch.arange(channels, dtype=torch.float64) / channels).pow(power).float()


def token_shift(x: torch.Tensor, last: torch.Tensor | None = None) -> torch.Tensor:
    """x_{t−1} for every t: (B, L, D) shifted down one step, with ``last`` (or zeros) in front."""
    first = torch.zeros_like(x[:, :1]) if last is None else last[:, None]
    return torch.cat([first, x[:, :-1]], dim=1)


def _mix(x, prev, mu):
    return x * mu + prev * (1 - mu)


class TimeMix(nn.Module):
    """RWKV-4 time mixing: token shift, r/k/v, σ(r) ⊙ wkv, output projection."""

    def __init__(self, d_model: int, layer_id: int = 0, n_layers: int = 1, backend: str = "auto"):
        super().__init__()
        self.backend = check_choice(backend, "backend", BACKENDS)
        ratio_1_to_almost0 = 1.0 - layer_id / n_layers
        ratio_0_to_1 = layer_id / (n_layers - 1) if n_layers > 1 else 0.0
        self.time_decay = nn.Parameter(rwkv4_decay_init(d_model, layer_id, n_layers))
        self.time_first = nn.Parameter(rwkv4_bonus_init(d_model))
        self.time_mix_k = nn.Parameter(_token_shift_init(d_model, ratio_1_to_almost0))
        self.time_mix_v = nn.Parameter(_token_shift_init(d_model, ratio_1_to_almost0) + 0.3 * ratio_0_to_1)
        self.time_mix_r = nn.Parameter(_token_shift_init(d_model, 0.5 * ratio_1_to_almost0))
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.receptance = nn.Linear(d_model, d_model, bias=False)
        self.output = nn.Linear(d_model, d_model, bias=False)

    @property
    def decay(self) -> torch.Tensor:
        """w = exp(time_decay) > 0 per channel."""
        return torch.exp(self.time_decay)

    def _rkv(self, x, prev):
        r = self.receptance(_mix(x, prev, self.time_mix_r))
        k = self.key(_mix(x, prev, self.time_mix_k))
        v = self.value(_mix(x, prev, self.time_mix_v))
        return r, k, v

    def forward(self, x, state: tuple | None = None, return_state: bool = False):
        """x (B, L, D). ``state`` = (last input (B, D), WKVState) to continue a sequence."""
        last, wkv_state = state if state is not None else (None, None)
        r, k, v = self._rkv(x, token_shift(x, last))
        y, wkv_state = wkv(self.decay, self.time_first, k, v, backend=self.backend, state=wkv_state,
                           return_state=True)
        out = self.output(torch.sigmoid(r) * y)
        return (out, (x[:, -1], wkv_state)) if return_state else out

    def init_state(self, batch_size: int, device=None, dtype=None):
        dtype = dtype or self.time_decay.dtype
        return (torch.zeros(batch_size, self.key.in_features, device=device, dtype=dtype),
                init_wkv_state(batch_size, self.key.in_features, device=device, dtype=dtype))

    def step(self, x_t, state):
        last, wkv_state = state
        r, k, v = self._rkv(x_t, last)
        ct = compute_dtype(k.dtype)
        y, wkv_state = wkv_step(self.decay.to(ct), self.time_first.to(ct), k.to(ct), v.to(ct), wkv_state)
        return self.output(torch.sigmoid(r) * y.to(k.dtype)), (x_t, wkv_state)


class ChannelMix(nn.Module):
    """RWKV-4 channel mixing: token shift, squared ReLU, σ(r) gate."""

    def __init__(self, d_model: int, layer_id: int = 0, n_layers: int = 1, expansion: int = 4):
        super().__init__()
        hidden = check_positive_int(expansion, "ffn_expansion") * d_model
        ratio_1_to_almost0 = 1.0 - layer_id / n_layers
        self.time_mix_k = nn.Parameter(_token_shift_init(d_model, ratio_1_to_almost0))
        self.time_mix_r = nn.Parameter(_token_shift_init(d_model, ratio_1_to_almost0))
        self.key = nn.Linear(d_model, hidden, bias=False)
        self.receptance = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(hidden, d_model, bias=False)

    def _mixed(self, x, prev):
        k = torch.square(torch.relu(self.key(_mix(x, prev, self.time_mix_k))))
        return torch.sigmoid(self.receptance(_mix(x, prev, self.time_mix_r))) * self.value(k)

    def forward(self, x, last: torch.Tensor | None = None):
        return self._mixed(x, token_shift(x, last))

    def step(self, x_t, last):
        return self._mixed(x_t, last)


@register_mixer("rwkv", family="recurrent", causal=True,
                summary="RWKV-4: token shift + WKV (linear attention with per-channel decay and a bonus) + "
                        "squared-ReLU channel mix; step() carries a constant-size state.")
class RWKVMixer(Mixer):
    """Time mix + channel mix of one RWKV-4 block (see the module docstring for the residual wiring).

    Args:
        d_model: width.
        layer_id, n_layers: position in the stack, for the per-channel initialisation.
        ffn_expansion: hidden width of the channel mix (4 in RWKV-4).
        channel_mix: include the channel mix (False: the time mix alone, e.g. in place of attention
            in a backbone that keeps its own MLP).
        backend: the WKV backend (``postlib.recurrent.wkv.BACKENDS``).
    """

    causal = True

    def __init__(self, d_model: int, layer_id: int = 0, n_layers: int = 1, ffn_expansion: int = 4,
                 channel_mix: bool = True, backend: str = "auto"):
        super().__init__(d_model)
        check_positive_int(n_layers, "n_layers")
        if not isinstance(layer_id, int) or not 0 <= layer_id < n_layers:
            raise ValueError(f"layer_id must be an int in [0, n_layers={n_layers}), got {layer_id!r}")
        self.time_mix = TimeMix(d_model, layer_id, n_layers, backend)
        self.channel_mix = ChannelMix(d_model, layer_id, n_layers, ffn_expansion) if channel_mix else None
        self.norm = nn.LayerNorm(d_model) if channel_mix else None

    def _forward(self, x):
        return self.prefill(x)[0]

    def prefill(self, x, state: dict | None = None):
        """The parallel form over a whole sequence (or a continuation of ``state``): (y, state after it).
        RWKV's "GPT mode": build the RNN state for a prompt in one parallel pass, then ``step``."""
        state = state or {}
        tm = state.get("time")
        y, tm = self.time_mix(x, tm, return_state=True)
        out = {"time": tm}
        if self.channel_mix is not None:
            h = self.norm(x + y)
            y = y + self.channel_mix(h, state.get("channel"))
            out["channel"] = h[:, -1]
        return y, out

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.time_mix.time_decay.device
        dtype = dtype or self.time_mix.time_decay.dtype
        state = {"time": self.time_mix.init_state(batch_size, device, dtype)}
        if self.channel_mix is not None:
            state["channel"] = torch.zeros(batch_size, self.d_model, device=device, dtype=dtype)
        return state

    def _step(self, x_t, state):
        y, tm = self.time_mix.step(x_t, state["time"])
        out = {"time": tm}
        if self.channel_mix is not None:
            h = self.norm(x_t + y)
            y = y + self.channel_mix.step(h, state["channel"])
            out["channel"] = h
        return y, out

    def state_bytes(self, batch: int, dtype=torch.float32) -> int:
        """Bytes of the decoding state: constant in the context length (compare a KV cache's 2·L·d)."""
        item = torch.empty((), dtype=dtype).element_size()
        wkv_item = torch.empty((), dtype=compute_dtype(dtype)).element_size()
        n_inputs = 2 if self.channel_mix is not None else 1
        return batch * self.d_model * (n_inputs * item + 3 * wkv_item)

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Upper bound on the peak bytes of one call beyond inputs and parameters (CONTRACTS §1).

        Forward (no_grad): about six (B, L, D) activations stay alive (token shift, r, k, v, σ(r), the
        output) while the larger of two phases runs — the WKV call (``wkv_memory_estimate``) or the
        channel mix (its hidden ReLU² of width ffn·D, twice, plus LN(x + y)). With a backward pass the
        graph keeps ~16 + 6·ffn activations and the WKV call's autograd working set; the parameters'
        gradients and the margin are added by ``Mixer._estimate``. Held to ``postlib.bench.peak_memory``
        by tests/test_registry.py.
        """
        from .wkv import wkv_memory_estimate
        item = dtype.itemsize
        n = batch * length * self.d_model
        hidden = self.channel_mix.key.out_features // self.d_model if self.channel_mix is not None else 0
        wkv_bytes = partial(wkv_memory_estimate, batch, length, self.d_model, dtype, self.time_mix.backend)
        forward = 6 * n * item + max(wkv_bytes(grad=False), (2 + 2 * hidden) * n * item)
        forward_backward = (16 + 6 * hidden) * n * item + wkv_bytes(grad=True)
        return self._estimate(mode, dtype, forward, forward_backward)
