"""Reversible residual layers (RevNet, Gomez et al. 2017), as used by the Reformer (§3).

Split the activations into two halves and update them alternately:

    y₁ = x₁ + F(x₂)          x₂ = y₂ − G(y₁)
    y₂ = x₂ + G(y₁)          x₁ = y₁ − F(x₂)

The right-hand column recovers a layer's input from its output, so backward
does not need stored activations: ``ReversibleSequence`` keeps only the last
layer's output and, layer by layer from the top, recomputes each input and
back-propagates through F and G locally. Activation memory is then O(1) in
depth instead of O(depth) — at the price of one extra forward per layer.

Tests (tests/attention/test_reformer.py): inputs are reconstructed exactly (fp64),
gradients equal ordinary back-propagation through ``forward_standard``, and the
bytes saved for backward do not grow with depth (measured with
``torch.autograd.graph.saved_tensors_hooks``).
"""
from __future__ import annotations

import torch
from torch import nn

from .._checks import check_tensor


class ReversibleBlock(nn.Module):
    """One reversible layer around two residual functions F (e.g. attention) and G (e.g. an MLP)."""

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x1, x2):
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return y1, y2

    def inverse(self, y1, y2):
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return x1, x2


class _ReversibleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, blocks, *params):
        x1, x2 = x.chunk(2, dim=-1)
        with torch.no_grad():
            for block in blocks:
                x1, x2 = block(x1, x2)
        y = torch.cat([x1, x2], dim=-1)
        ctx.blocks = blocks
        ctx.save_for_backward(y.detach())             # the only activation kept, whatever the depth
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        y1, y2 = y.chunk(2, dim=-1)
        g1, g2 = grad_y.chunk(2, dim=-1)
        params = [p for block in ctx.blocks for p in block.parameters()]
        param_grads = {id(p): torch.zeros_like(p) for p in params}
        for block in reversed(ctx.blocks):
            with torch.no_grad():
                x1, x2 = block.inverse(y1, y2)        # recompute this layer's input from its output
            with torch.enable_grad():
                x1_, x2_ = x1.detach().requires_grad_(True), x2.detach().requires_grad_(True)
                out1, out2 = block(x1_, x2_)
                bparams = list(block.parameters())
                grads = torch.autograd.grad((out1, out2), (x1_, x2_, *bparams), (g1, g2), allow_unused=True)
            g1, g2 = grads[0], grads[1]
            for p, gp in zip(bparams, grads[2:]):
                if gp is not None:
                    param_grads[id(p)] += gp
            y1, y2 = x1, x2
        return (torch.cat([g1, g2], dim=-1), None, *[param_grads[id(p)] for p in params])


class ReversibleSequence(nn.Module):
    """A stack of ``ReversibleBlock``s on (..., 2·d) activations (split into two d halves).

    ``forward`` uses the memory-saving custom backward; ``forward_standard`` is the
    ordinary autograd version (the reference for gradients and for memory).
    """

    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def _check(self, x):
        check_tensor(x, "x", None, "(..., 2·d)")
        if x.shape[-1] % 2:
            raise ValueError(f"x must have an even last dimension (two halves), got shape {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        params = [p for block in self.blocks for p in block.parameters()]
        return _ReversibleFunction.apply(x, self.blocks, *params)

    def forward_standard(self, x):
        self._check(x)
        x1, x2 = x.chunk(2, dim=-1)
        for block in self.blocks:
            x1, x2 = block(x1, x2)
        return torch.cat([x1, x2], dim=-1)

    @torch.no_grad()
    def reconstruct_input(self, y):
        """Run every block's inverse from the top: returns the input that produced ``y``."""
        y1, y2 = y.chunk(2, dim=-1)
        for block in reversed(self.blocks):
            y1, y2 = block.inverse(y1, y2)
        return torch.cat([y1, y2], dim=-1)


def saved_activation_bytes(fn, *args) -> int:
    """Bytes of tensors autograd saves for backward while running ``fn(*args)`` (parameters excluded)."""
    total = 0
    params = {id(p) for a in args if isinstance(a, nn.Module) for p in a.parameters()}

    def pack(t):
        nonlocal total
        if id(t) not in params and not isinstance(t, nn.Parameter):
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    del out
    return total
