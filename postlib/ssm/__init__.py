"""State-space models: continuous systems, their discretization, HiPPO, S4, DSS/S4D and Mamba.

Importing this package registers the mixers ``"s4"``, ``"dss"``, ``"s4d"``, ``"mamba"`` and ``"mega"``.
"""
from .discretize import METHODS, derive_discretization, discrete_eigenvalue, discretize
from .hippo import KINDS, hippo, hippo_online, reconstruct
from .s4 import cauchy, nplr_legs, s4_kernel, s4_kernel_naive
from .s4d import s4d_init, vandermonde_kernel, zoh_diagonal
from .scan import associative_scan, selective_scan
from .ssd import ssd_chunked
from . import s4, s4d, mamba  # noqa: F401  (register the mixers)
from .ema import damped_ema, ema_kernel
from . import mega  # noqa: F401  (registers "mega": damped EMA + gated attention)

__all__ = ["METHODS", "derive_discretization", "discrete_eigenvalue", "discretize", "KINDS", "hippo",
           "hippo_online", "reconstruct", "cauchy", "nplr_legs", "s4_kernel", "s4_kernel_naive", "s4d_init",
           "vandermonde_kernel", "zoh_diagonal", "associative_scan", "selective_scan", "ssd_chunked",
           "damped_ema", "ema_kernel"]
