"""The Mamba block (Gu & Dao 2023, Fig. 3) as the mixer ``"mamba"``.

    x, z = in_proj(h).chunk(2)                 (d_model → 2·d_inner)
    x = silu(causal depthwise conv1d(x))        (kernel d_conv, per channel)
    Δ, B, C = x_proj(x)                         selective: Δ (via a rank-dt_rank projection), B, C depend on x
    y = selective_scan(x, Δ, A, B, C, D, z, Δ_bias, softplus)   (the SSM, gated by silu(z))
    out = out_proj(y)

``step`` keeps a (d_inner, d_conv − 1) window for the convolution and the (d_inner, N) SSM
state: constant memory per token, unlike a KV cache. ``step`` ≡ ``forward``: tests/test_registry.py
and tests/ssm/test_mamba.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_dt_range, check_positive_int
from ..registry import Mixer, itemsizes, register_mixer
from .scan import BACKENDS, choose_backend, scan_bytes, selective_scan


@register_mixer("mamba", family="ssm", causal=True,
                summary="Mamba: selective SSM (input-dependent Δ, B, C) with a causal conv and a SiLU gate; "
                        "step() is O(1) memory.")
class MambaMixer(Mixer):
    causal = True

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, backend: str = "auto", selective: bool = True):
        super().__init__(d_model)
        self.d_state = check_positive_int(d_state, "d_state")
        self.d_conv = check_positive_int(d_conv, "d_conv")
        self.d_inner = check_positive_int(expand, "expand") * d_model
        # None: ⌈d_model/16⌉, the Mamba code base's rule. An explicit rank must be >= 1.
        self.dt_rank = check_positive_int(max(1, math.ceil(d_model / 16)) if dt_rank is None else dt_rank, "dt_rank")
        dt_min, dt_max = check_dt_range(dt_min, dt_max)
        self.backend = check_choice(backend, "backend", BACKENDS)
        # selective=False freezes Δ, B, C to input-independent parameters: an S4D-like (LTI) SSM
        # inside the same block, the "S4 vs S6" ablation of Mamba's Table 1.
        self.selective = bool(selective)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner)
        self.conv = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        # Δ's bias: softplus⁻¹ of Δ log-uniform in [dt_min, dt_max], as in the Mamba code base.
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # S4D-Real initialisation: A_n = −(n + 1), stored as log so A stays negative.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        if not self.selective:
            self.B_fixed = nn.Parameter(torch.randn(self.d_inner, d_state) / math.sqrt(d_state))
            self.C_fixed = nn.Parameter(torch.randn(self.d_inner, d_state) / math.sqrt(d_state))
        self.out_proj = nn.Linear(self.d_inner, d_model)

    def _ssm_params(self, x):
        """x (..., d_inner) → Δ (pre-softplus, without bias) (..., d_inner), B, C (..., N)."""
        if not self.selective:
            zeros = x.new_zeros(*x.shape[:-1], self.d_inner)
            return zeros, None, None
        dbc = self.x_proj(x)
        dt, B, C = dbc.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C

    def _forward(self, h):
        L = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)                          # (b, L, d_inner) each
        x = F.silu(self.conv(x.transpose(1, 2))[..., :L])                # causal: drop the right padding
        dt, B, C = self._ssm_params(x.transpose(1, 2))
        A = -torch.exp(self.A_log.to(x.dtype))
        if self.selective:
            B, C = B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous()   # (b, N, L)
        else:
            B, C = self.B_fixed.to(x.dtype), self.C_fixed.to(x.dtype)
        y = selective_scan(x, dt.transpose(1, 2).contiguous(), A, B, C, self.D.to(x.dtype), z.transpose(1, 2).contiguous(),
                           self.dt_proj.bias.to(x.dtype), delta_softplus=True, backend=self.backend)
        return self.out_proj(y.transpose(1, 2))

    def memory_estimate(self, batch, length, dtype, mode="forward"):
        """Linear in length: about sixteen (batch, length, d_inner) activations around the scan (projections,
        convolution, gate, transposed copies), the projected Δ/B/C, and the scan's own working set, which
        depends on the form ``backend="auto"`` picks for this size (``postlib.ssm.scan.scan_bytes``)."""
        s = itemsizes(dtype)[0]
        backend = self.backend
        if backend == "auto":
            backend = choose_backend(batch, self.d_inner, length, self.d_state, self.A_log.is_cuda)
        scan_f, scan_fb = scan_bytes(batch, self.d_inner, length, self.d_state, s, backend)
        inner = batch * length * self.d_inner * s
        projected = batch * length * (self.dt_rank + 2 * self.d_state) * s * 3
        outer = batch * length * self.d_model
        # The depthwise convolution's CPU backward takes a workspace of 256 entries per channel.
        workspace = 256 * self.d_inner * s
        return self._estimate(mode, dtype, 16 * inner + projected + 2 * outer * s + outer + scan_f,
                              32 * inner + 2 * projected + 4 * outer * s + outer + scan_fb + workspace)

    def init_state(self, batch_size, device=None, dtype=None):
        device = device or self.A_log.device
        dtype = dtype or self.A_log.dtype
        return {"conv": torch.zeros(batch_size, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
                "ssm": torch.zeros(batch_size, self.d_inner, self.d_state, device=device, dtype=dtype)}

    def _step(self, h_t, state):
        x, z = self.in_proj(h_t).chunk(2, dim=-1)                        # (b, d_inner)
        window = torch.cat([state["conv"], x[..., None]], dim=-1)        # (b, d_inner, d_conv)
        x = F.silu((window * self.conv.weight[:, 0]).sum(-1) + self.conv.bias)
        dt, B, C = self._ssm_params(x)
        if not self.selective:
            B, C = self.B_fixed[None], self.C_fixed[None]
        else:
            B, C = B[:, None], C[:, None]
        dt = F.softplus(dt + self.dt_proj.bias)[..., None]               # (b, d_inner, 1)
        A = -torch.exp(self.A_log)
        ssm = torch.exp(dt * A) * state["ssm"] + dt * B * x[..., None]
        y = (ssm * C).sum(-1) + self.D * x
        y = y * F.silu(z)
        return self.out_proj(y), {"conv": window[..., 1:], "ssm": ssm}
