"""Input validation shared by every public function.

Every check raises ``ValueError`` (wrong shape or value) or ``TypeError``
(wrong type, dtype or device) with a message that names the argument and the
expected shape, so a learner sees *which* tensor was wrong and *what* was
expected instead of an opaque broadcasting error deep inside a kernel.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import operator
from typing import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(x, name: str, ndim: int | None = None, shape_doc: str = "",
                 floating: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor with ``ndim`` dimensions and a float dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape_doc}, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {shape_doc}, got shape {tuple(x.shape)}")
    if floating and x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor (float16/bfloat16/float32/float64), got {x.dtype}")
    return x


def check_same(tensors: Sequence[torch.Tensor], names: Sequence[str], what: str = "device and dtype") -> None:
    """Check that tensors share device and dtype (what every kernel assumes)."""
    first, first_name = tensors[0], names[0]
    for t, n in zip(tensors[1:], names[1:]):
        if t.device != first.device:
            raise TypeError(f"{n} is on {t.device} but {first_name} is on {first.device}; all inputs must share a device")
        if t.dtype != first.dtype:
            raise TypeError(f"{n} has dtype {t.dtype} but {first_name} has {first.dtype}; all inputs must share a dtype")


def check_qkv(q, k, v, shape_doc: str = "(batch, heads, length, head_dim)"):
    """Validate attention inputs: q (B,H,Lq,D), k (B,H,Lk,D), v (B,H,Lk,Dv)."""
    check_tensor(q, "q", 4, shape_doc)
    check_tensor(k, "k", 4, shape_doc)
    check_tensor(v, "v", 4, shape_doc)
    check_same([q, k, v], ["q", "k", "v"])
    if k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"q, k, v must share (batch, heads); got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have head_dim {q.shape[-1]} like q {shape_doc}, got k {tuple(k.shape)}")
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"v must have the same length as k ({k.shape[2]}) {shape_doc}, got v {tuple(v.shape)}")
    if q.shape[2] == 0 or k.shape[2] == 0:
        raise ValueError(f"length must be at least 1, got q {tuple(q.shape)}, k {tuple(k.shape)}")


def check_sequence(x, d_model: int, name: str = "x") -> torch.Tensor:
    """Validate a mixer input of shape (batch, length, d_model)."""
    check_tensor(x, name, 3, "(batch, length, d_model)")
    if x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, length, d_model={d_model}), got {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have length >= 1, got shape {tuple(x.shape)}")
    return x


def check_token(x_t, d_model: int, name: str = "x_t") -> torch.Tensor:
    """Validate one decoding step's input of shape (batch, d_model)."""
    check_tensor(x_t, name, 2, "(batch, d_model)")
    if x_t.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, d_model={d_model}), got {tuple(x_t.shape)}")
    return x_t


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


CAUSAL_NONFINITE = ("a causal form must not let a later position change an earlier output, and a NaN or inf "
                    "would, through 0·NaN = NaN in a masked product")


_NONFINITE_ALLOWED = contextvars.ContextVar("postlib_nonfinite_allowed", default=False)


@contextlib.contextmanager
def allow_nonfinite():
    """Inside this block, postlib lets NaN and ±inf input through instead of refusing it.

    The arithmetic then gives what it gives: in a causal form computed by an FFT or a
    masked product, a NaN can reach *earlier* outputs too (0·NaN = NaN). For studying
    exactly that, or to skip the check's pass over the input.
    """
    token = _NONFINITE_ALLOWED.set(True)
    try:
        yield
    finally:
        _NONFINITE_ALLOWED.reset(token)


def check_finite(x: torch.Tensor, name: str, why: str = "") -> torch.Tensor:
    """Refuse NaN and ±inf in ``x`` (unless inside ``allow_nonfinite()``); ``why`` says what it would break."""
    if _NONFINITE_ALLOWED.get():
        return x
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"{name} must be finite, but {name}{bad} = {x[tuple(bad)].item()}"
                         + (f": {why}" if why else ""))
    return x


def check_number(value, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A finite real number (int or float, not bool), optionally > 0 or >= 0; returned as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_dt_range(dt_min, dt_max) -> tuple[float, float]:
    """The range of step sizes Δ an SSM layer draws from (log-uniform): 0 < dt_min <= dt_max, both finite."""
    dt_min, dt_max = check_number(dt_min, "dt_min", positive=True), check_number(dt_max, "dt_max", positive=True)
    if dt_min > dt_max:
        raise ValueError(f"dt_min must be <= dt_max (Δ is drawn log-uniformly from [dt_min, dt_max]), "
                         f"got dt_min={dt_min} > dt_max={dt_max}")
    return dt_min, dt_max


def check_int_list(values, name: str, minimum: int = 1) -> list[int]:
    """A sequence of ints >= ``minimum``; a float such as 8.7 is refused, never truncated."""
    out = []
    for v in values:
        if isinstance(v, bool):
            raise TypeError(f"{name} must hold integers >= {minimum}, got {v!r}")
        try:
            n = operator.index(v)
        except TypeError:
            raise TypeError(f"{name} must hold integers >= {minimum}, got {v!r} ({type(v).__name__})") from None
        if n < minimum:
            raise ValueError(f"{name} must hold integers >= {minimum}, got {n}")
        out.append(n)
    return out
