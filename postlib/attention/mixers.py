"""Multi-head softmax attention as a registered mixer, with a KV cache for ``step``."""
from __future__ import annotations

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ..registry import Mixer, itemsizes, register_mixer
from .softmax import softmax_attention


class MultiHeadMixer(Mixer):
    """Shared plumbing for attention-like mixers: fused QKV projection, heads, output projection.

    Subclasses implement ``attend(q, k, v)`` on (B, H, L, Dh) tensors.
    """

    def __init__(self, d_model: int, n_heads: int = 4):
        super().__init__(d_model)
        check_positive_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, x: torch.Tensor):
        """(B, L, D) -> three (B, H, L, Dh) tensors."""
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        B, H, L, Dh = y.shape
        return self.out(y.transpose(1, 2).reshape(B, L, H * Dh))

    def _forward(self, x):
        q, k, v = self.split_heads(x)
        return self.merge_heads(self.attend(q, k, v))

    def attend(self, q, k, v):  # pragma: no cover - abstract
        raise NotImplementedError

    def _projection_bytes(self, batch: int, length: int, dtype) -> tuple[int, int]:
        """(forward, forward + backward) bytes of the shared plumbing, for ``memory_estimate``: the fused
        QKV output, head split/merge copies, the output projection, the input check (a byte per element)
        and, backward, their gradients. Counted in units of one (batch, length, d_model) activation."""
        n = batch * length * self.d_model
        s = itemsizes(dtype)[0]
        return 10 * n * s + n, 24 * n * s + n


@register_mixer("softmax", family="attention", causal=True,
                summary="Multi-head softmax attention (the Transformer baseline); step() uses a KV cache.")
class SoftmaxAttentionMixer(MultiHeadMixer):
    """Causal multi-head softmax attention.

    ``backend`` picks the kernel: ``"reference"`` materialises the score
    matrix, ``"flash"`` uses the tiled online-softmax form (Triton on CUDA).
    ``step`` appends the new key and value to a KV cache — memory and time
    per token grow with the context, the cost later chapters remove.
    """

    causal = True

    def __init__(self, d_model: int, n_heads: int = 4, backend: str = "reference"):
        super().__init__(d_model, n_heads)
        self.backend = check_choice(backend, "backend", ("reference", "flash"))

    def attend(self, q, k, v):
        if self.backend == "flash":
            from .flash import flash_attention
            return flash_attention(q, k, v, causal=True)
        return softmax_attention(q, k, v, causal=True)

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """The (length × length) score matrices per head dominate: the reference form holds two at its
        peak (scores and probabilities; a half-precision input adds the fp32 copy the softmax runs on),
        the backward three (probabilities, their gradient, the scores' gradient), plus the causal mask
        and its negation (a byte per entry). ``flash`` holds one (length × tile) tile at a time, but on
        CPU autograd keeps every tile for the backward, as many entries as the reference."""
        s, w = itemsizes(dtype)
        proj_f, proj_fb = self._projection_bytes(batch, length, dtype)
        copy = s if s < w else 0
        scores = batch * self.n_heads * length * length
        masks = 2 * length * length
        quadratic_fb = scores * (3 * w + 2 * copy) + masks
        if self.backend == "reference":
            forward, backward = scores * (2 * w + copy) + masks, quadratic_fb
        else:
            n = batch * length * self.d_model
            tiles = 4 * batch * self.n_heads * length * min(64, length) * w + 4 * n * w
            # On CUDA the kernel's backward is tiled too; on CPU autograd saves every tile.
            backward = tiles + 4 * n * w if self.qkv.weight.is_cuda else quadratic_fb + tiles
            forward = tiles
        return self._estimate(mode, dtype, proj_f + forward, proj_fb + backward)

    def init_state(self, batch_size, device=None, dtype=None):
        """Empty KV cache: keys and values of shape (batch, heads, 0, head_dim)."""
        shape = (batch_size, self.n_heads, 0, self.head_dim)
        dtype = dtype or self.qkv.weight.dtype
        device = device or self.qkv.weight.device
        return {"k": torch.zeros(shape, device=device, dtype=dtype),
                "v": torch.zeros(shape, device=device, dtype=dtype)}

    def _step(self, x_t, state):
        q, k, v = self.split_heads(x_t[:, None])          # each (B, H, 1, Dh)
        k_cache = torch.cat([state["k"], k], dim=2)
        v_cache = torch.cat([state["v"], v], dim=2)
        y = softmax_attention(q, k_cache, v_cache, causal=True)
        return self.merge_heads(y)[:, 0], {"k": k_cache, "v": v_cache}
