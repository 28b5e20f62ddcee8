"""Triton GPU kernels. Each has a PyTorch twin named in its docstring.

On a machine without a GPU, tests run the kernels through Triton's
interpreter: set ``TRITON_INTERPRET=1`` *before* ``triton`` is imported
(``tests/conftest.py`` does this), then call them on CPU tensors.
"""
from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when Triton imports (it may still need a GPU or the interpreter to run)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:
        return False
    return True


def interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_triton_device(*tensors) -> None:
    """A Triton kernel runs on CUDA tensors, or on CPU tensors under the interpreter."""
    if not triton_available():
        raise RuntimeError("backend='triton' needs the triton package; use backend='torch'")
    for t in tensors:
        if not t.is_cuda and not interpreter_enabled():
            raise TypeError(
                f"backend='triton' got a tensor on {t.device}; Triton kernels need CUDA tensors "
                "(or TRITON_INTERPRET=1 set before importing triton, to run them on CPU)")
