"""gMLP (Liu et al. 2021, "Pay Attention to MLPs"): mixing tokens with a learned length × length matrix.

The spatial gating unit (the paper's Eq. 1–2), on Z of shape (length, d_ffn) split along channels
into halves Z₁, Z₂:

    f_{W,b}(Z₂) = W · LayerNorm(Z₂) + b        W: (length × length), b: (length,)
    s(Z)        = Z₁ ⊙ f_{W,b}(Z₂)

W multiplies along the *sequence*, so output t is a learned weighted sum of every token's gate
half: that is the token mixing. It needs no attention scores, but W is tied to positions: the model
has a maximum length, and W alone costs length² parameters. The paper initialises W near zero and
b = 1, so f ≈ 1 and s(Z) ≈ Z₁: each block starts as a plain MLP. Causal gMLP keeps W's lower
triangle (output t sees tokens ≤ t).

The gMLP block (the paper's Fig. 1) around it: Z = GELU(X U) (d_model → d_ffn), s(Z), then V back to
d_model. The mixer ``"gmlp"`` is that block without its norm and residual (the backbone adds both).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ..registry import Mixer, register_mixer


def _check_length(length: int, max_len: int) -> None:
    if length > max_len:
        raise ValueError(f"gMLP's spatial weights cover max_len={max_len} positions, but the input has length "
                         f"{length}; build the mixer with max_len >= {length} (W costs max_len² parameters)")


class SpatialGatingUnit(nn.Module):
    """s(Z) = Z₁ ⊙ (W·LayerNorm(Z₂) + b) along the sequence; Z: (batch, length, d_ffn) → (batch, length, d_ffn/2).

    ``W[t, s]`` is the weight output t gives to token s. Inputs shorter than ``max_len`` use the
    top-left block of W (for the causal unit this is exact: row t only ever reads W[t, :t+1]).
    """

    def __init__(self, d_ffn: int, max_len: int, causal: bool = True, init_eps: float = 1e-3):
        super().__init__()
        check_positive_int(d_ffn, "d_ffn")
        if d_ffn % 2:
            raise ValueError(f"d_ffn must be even (it is split into two halves), got {d_ffn}")
        self.max_len = check_positive_int(max_len, "max_len")
        self.causal = bool(causal)
        self.norm = nn.LayerNorm(d_ffn // 2)
        # Near zero (scaled by 1/max_len so the sum over tokens stays small) and b = 1: s(Z) ≈ Z₁ at init.
        self.weight = nn.Parameter(torch.empty(max_len, max_len).uniform_(-init_eps / max_len, init_eps / max_len))
        self.bias = nn.Parameter(torch.ones(max_len))

    def spatial_weight(self, length: int) -> torch.Tensor:
        """W for a sequence of ``length`` tokens (lower-triangular when causal): (length, length)."""
        _check_length(length, self.max_len)
        W = self.weight[:length, :length]
        return W.tril() if self.causal else W

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        L = z.shape[1]
        z1, z2 = z.chunk(2, dim=-1)
        gate = torch.einsum("ts,bsd->btd", self.spatial_weight(L), self.norm(z2)) + self.bias[:L, None]
        return z1 * gate


@register_mixer("gmlp", family="mixing", causal=True,
                summary="gMLP: a spatial gating unit multiplies the sequence by a learned (causal) length x length "
                        "matrix; fixed max_len, O(L^2) parameters, no attention scores.")
class GMLPMixer(Mixer):
    """Causal gMLP block: GELU(proj_in(x)) → spatial gating unit → proj_out.

    Args:
        d_model: width.
        max_len: the longest sequence (W is max_len × max_len); longer inputs are refused by name.
        expansion: d_ffn = expansion · d_model (the paper uses 6 in a model with no separate MLP; our
            backbone keeps its MLP, so the default is 2).
        init_eps: W starts uniform in ±init_eps / max_len.
    ``step`` keeps the normalised gate halves of every past token (the unit needs all of them):
    its state grows with the context, like a KV cache, up to max_len.
    """

    causal = True

    def __init__(self, d_model: int, max_len: int = 1024, expansion: int = 2, init_eps: float = 1e-3):
        super().__init__(d_model)
        d_ffn = check_positive_int(expansion, "expansion") * d_model
        d_ffn += d_ffn % 2                                    # the unit splits it in two halves
        self.d_ffn = d_ffn
        self.proj_in = nn.Linear(d_model, d_ffn)
        self.sgu = SpatialGatingUnit(d_ffn, max_len, causal=True, init_eps=init_eps)
        self.proj_out = nn.Linear(d_ffn // 2, d_model)

    @property
    def max_len(self) -> int:
        return self.sgu.max_len

    def _forward(self, x):
        _check_length(x.shape[1], self.max_len)
        return self.proj_out(self.sgu(F.gelu(self.proj_in(x))))

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.proj_in.weight.device
        dtype = dtype or self.proj_in.weight.dtype
        return {"gates": torch.zeros(batch_size, 0, self.d_ffn // 2, device=device, dtype=dtype)}

    def _step(self, x_t, state):
        gates = state["gates"]
        t = gates.shape[1]
        _check_length(t + 1, self.max_len)
        z1, z2 = F.gelu(self.proj_in(x_t)).chunk(2, dim=-1)
        gates = torch.cat([gates, self.sgu.norm(z2)[:, None]], dim=1)            # (B, t + 1, d_ffn/2)
        gate = torch.einsum("s,bsd->bd", self.sgu.weight[t, :t + 1], gates) + self.sgu.bias[t]
        return self.proj_out(z1 * gate), {"gates": gates}

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Upper bound on one call's peak bytes (CONTRACTS §1). Forward (no_grad): about three
        (B, L, d_ffn) activations at once (projection, GELU, then the halves, the normalised gate and
        the product) and the causal (L × L) weight. A backward pass keeps ~8 of them and three (L × L);
        ``Mixer._estimate`` adds the parameters' gradients (W alone is max_len², whatever the length)
        and the margin. Held to ``postlib.bench.peak_memory`` by tests/test_registry.py."""
        item = dtype.itemsize
        acts = batch * length * self.d_ffn
        return self._estimate(mode, dtype, (3 * acts + length * length + length) * item,
                              (8 * acts + 3 * length * length) * item)
