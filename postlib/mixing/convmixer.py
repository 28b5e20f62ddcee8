"""ConvMixer (Trockman & Kolter 2022, "Patches Are All You Need?"): mixing tokens with a depthwise convolution.

The paper's block (its Eq. 2–3), on a grid of patch embeddings z (channels × positions):

    z'      = BN(σ(DepthwiseConv(z))) + z        mixes each channel over a k × k neighbourhood
    z_next  = BN(σ(PointwiseConv(z')))           mixes channels at each position       (σ = GELU)

Token mixing is local: one block reaches k − 1 positions back, so a stack of ``depth`` blocks sees
depth·(k − 1) + 1 positions — the receptive field grows *linearly* with depth (``receptive_field``),
while attention sees everything in one layer.

Two versions here:

* the mixer ``"convmixer"`` on sequences: a causal depthwise Conv1d (left padding k − 1, so output t
  sees inputs t − k + 1 … t). BatchNorm is replaced by LayerNorm over channels: batch statistics
  would mix every position (the future included) into every output while training.
  ``step`` keeps only the last k − 1 inputs: constant memory.
* ``ConvMixer2d``: the paper's image classifier (patch embedding, depth × block, pooling, linear head),
  with BatchNorm as in the paper — in ``postlib/mixing/vision.py`` beside its Transformer twin.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int
from ..registry import Mixer, register_mixer


def receptive_field(depth: int, kernel_size: int) -> int:
    """Positions one output of a stack of ``depth`` causal convolutions of size ``kernel_size`` can see."""
    check_positive_int(depth, "depth", minimum=0)
    check_positive_int(kernel_size, "kernel_size")
    return depth * (kernel_size - 1) + 1


def receptive_field_counts(length: int, depth: int, kernel_size: int, causal: bool = True) -> torch.Tensor:
    """(length, length) int64: entry [t, s] counts the paths from input s to output t through the stack.

    Nonzero exactly on the receptive field: for causal convolutions s ∈ [t − depth·(k−1), t]. The
    counts (multinomial coefficients, peaked in the middle of the window) show why a deep stack's
    effective receptive field is narrower than its theoretical one.
    """
    check_positive_int(length, "length")
    check_positive_int(depth, "depth", minimum=0)
    check_positive_int(kernel_size, "kernel_size")
    offsets = torch.arange(length)[:, None] - torch.arange(length)[None, :]        # t − s
    if causal:
        band = (offsets >= 0) & (offsets < kernel_size)
    else:
        half = kernel_size // 2
        band = (offsets >= -(kernel_size - 1 - half)) & (offsets <= half)
    one = band.to(torch.int64)
    out = torch.eye(length, dtype=torch.int64)
    for _ in range(depth):
        out = one @ out
    return out


@register_mixer("convmixer", family="mixing", causal=True,
                summary="ConvMixer: causal depthwise convolution (kernel k) + GELU + norm + residual, then a "
                        "pointwise mix; receptive field grows by k-1 per layer; step() keeps k-1 inputs.")
class ConvMixerMixer(Mixer):
    """One ConvMixer block on sequences, causal: Residual(DepthwiseConv1d → GELU → LN), Linear → GELU → LN.

    Args:
        d_model: width (the number of depthwise filters).
        kernel_size: k, the causal window (the paper's best models use 7 or 9).
    """

    causal = True

    def __init__(self, d_model: int, kernel_size: int = 9):
        super().__init__(d_model)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.pointwise = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def _mix(self, x, conv):
        h = x + self.norm1(F.gelu(conv))
        return self.norm2(F.gelu(self.pointwise(h)))

    def _forward(self, x):
        padded = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))                # causal: pad the past only
        return self._mix(x, self.depthwise(padded).transpose(1, 2))

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.depthwise.weight.device
        dtype = dtype or self.depthwise.weight.dtype
        return {"window": torch.zeros(batch_size, self.d_model, self.kernel_size - 1, device=device, dtype=dtype)}

    def _step(self, x_t, state):
        past = state["window"]
        window = torch.cat([past, x_t[..., None]], dim=-1)                          # (B, d, k)
        conv = (window * self.depthwise.weight[:, 0]).sum(-1) + self.depthwise.bias
        return self._mix(x_t, conv), {"window": window[..., 1:]}

    def memory_estimate(self, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int:
        """Upper bound on one call's peak bytes (CONTRACTS §1): the left-padded copy and the convolution
        over L + k − 1 positions (×3 at once, ×4 with a backward pass) and about four (B, L, d)
        activations (GELU, norms, residual, pointwise; ×8 with a backward pass). ``Mixer._estimate``
        adds the parameters' gradients and the margin. Held to ``postlib.bench.peak_memory`` by
        tests/test_registry.py."""
        item = dtype.itemsize
        padded = batch * (length + self.kernel_size - 1) * self.d_model
        n = batch * length * self.d_model
        return self._estimate(mode, dtype, (3 * padded + 4 * n) * item, (4 * padded + 8 * n) * item)
