"""Sweeps: every registered mixer (or any set of functions) over sequence lengths.

Each measurement is one *row*, a flat dict with the same keys everywhere
(``ROW_KEYS``), so results from the chapters, the dashboard and the CLI can be
saved, reloaded and plotted by the same code (``postlib.viz.scaling``).

A configuration that would not fit is *skipped*, not crashed on: with
``max_bytes`` set, a mixer whose estimated working set (``estimate_bytes``)
exceeds the budget gets ``status = "skipped: ..."`` and no timing; an
out-of-memory error during a run, and a ``ValueError`` by which a mixer
refuses an input (say, a length beyond its ``max_length``), are recorded the
same way. Any other exception is a bug and propagates.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

from .._checks import check_positive_int
from .core import _device_type, peak_memory, time_fn

ROW_KEYS = ("name", "length", "batch", "d_model", "mode", "time_ms", "peak_mem_bytes", "device", "dtype", "status")
MODES = ("forward", "forward_backward")
# Families whose mixers may materialise a (length × length) matrix per head.
QUADRATIC_FAMILIES = ("attention", "sparse")


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(values) against log(lengths): ``values ∝ lengths^slope``.

    A slope near 1 is linear scaling, near 2 quadratic.
    """
    xs, ys = list(lengths), list(values)
    if len(xs) != len(ys):
        raise ValueError(f"lengths and values must have the same number of entries, got {len(xs)} and {len(ys)}")
    if len(set(xs)) < 2:
        raise ValueError(f"fit_exponent needs at least two distinct lengths, got {xs}")
    for name, seq in (("lengths", xs), ("values", ys)):
        bad = [v for v in seq if v is None or not math.isfinite(v) or v <= 0]
        if bad:
            raise ValueError(f"{name} must be positive finite numbers for a log-log fit, got {bad[:3]}")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    sxy = sum((a - mx) * (b - my) for a, b in zip(lx, ly))
    return sxy / sxx


def estimate_bytes(module, batch: int, length: int, dtype: torch.dtype, mode: str = "forward",
                   family: str | None = None) -> int:
    """A rough upper bound on the working set of one call, used only for the ``max_bytes`` budget.

    A mixer may say exactly with a ``memory_estimate(batch, length, dtype)``
    method. Otherwise mixers of the attention and sparse ``family`` are assumed to
    materialise the (length × length) score matrix once per head (twice when a
    backward pass keeps it for the gradient); other families are charged a
    generous linear working set of 16 activations of size (batch, length, d_model).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    if hasattr(module, "memory_estimate"):
        estimate = int(module.memory_estimate(batch, length, dtype))
    else:
        if family in QUADRATIC_FAMILIES:
            heads = int(getattr(module, "n_heads", 1))
            estimate = batch * heads * length * length * itemsize
        else:
            estimate = 16 * batch * length * int(getattr(module, "d_model", 1)) * itemsize
    return estimate * (2 if mode == "forward_backward" else 1)


def _row(name, length, batch, d_model, mode, device, dtype, time_ms=None, peak=None, status="ok") -> dict:
    return dict(name=name, length=int(length), batch=int(batch), d_model=d_model, mode=mode,
                time_ms=None if time_ms is None else float(time_ms),
                peak_mem_bytes=None if peak is None else int(peak),
                device=str(device), dtype=str(dtype).replace("torch.", ""), status=status)


def _config_for(name: str, names: Sequence[str], mixer_config: dict | None) -> dict:
    """``mixer_config`` is either kwargs for every mixer or ``{mixer name: kwargs}``."""
    if not mixer_config:
        return {}
    if all(k in names and isinstance(v, dict) for k, v in mixer_config.items()):
        return dict(mixer_config.get(name, {}))
    return dict(mixer_config)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not enabled, desc=desc, leave=False)


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(err).lower()


def measure_mixers(names: Iterable[str], lengths: Iterable[int], *, d_model: int = 64, batch: int = 1,
                   modes: Sequence[str] = MODES, device="cpu", dtype: torch.dtype = torch.float32,
                   repeats: int = 3, warmup: int = 1, memory: bool = True, mixer_config: dict | None = None,
                   progress: bool = False, max_bytes: int | None = None) -> list[dict]:
    """Time (and measure the peak memory of) each mixer at each length, in each mode.

    Args:
        names: registered mixer names (``postlib.list_mixers()``).
        lengths: sequence lengths; the input is ``randn(batch, length, d_model)``.
        modes: ``"forward"`` (under ``torch.no_grad``) and/or ``"forward_backward"``
            (forward, then ``output.sum().backward()``).
        mixer_config: constructor kwargs for every mixer, or ``{name: kwargs}``.
        max_bytes: skip configurations whose ``estimate_bytes`` exceeds it.
    Returns: one row per (name, length, mode), keys ``ROW_KEYS``.
    """
    from ..registry import build_mixer, mixer_info

    names, lengths, modes = list(names), [check_positive_int(int(n), "lengths") for n in lengths], list(modes)
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"modes must be a subset of {list(MODES)}, got {mode!r}")
    check_positive_int(d_model, "d_model")
    check_positive_int(batch, "batch")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    kind = _device_type(device)
    for name in names:
        mixer_info(name)  # fail before any timing with a list of valid names
    rows: list[dict] = []
    bar = _progress(len(names) * len(lengths) * len(modes), progress, "mixers")
    for name in names:
        module = build_mixer(name, d_model, **_config_for(name, names, mixer_config)).to(device=device, dtype=dtype)
        family = mixer_info(name).family
        for length in lengths:
            for mode in modes:
                bar.set_postfix_str(f"{name} L={length} {mode}")
                rows.append(_measure_one(module, family, name, length, batch, d_model, mode, device, kind,
                                         dtype, repeats, warmup, memory, max_bytes))
                bar.update()
        del module
    bar.close()
    return rows


def _measure_one(module, family, name, length, batch, d_model, mode, device, kind, dtype, repeats, warmup, memory,
                 max_bytes) -> dict:
    if max_bytes is not None:
        need = estimate_bytes(module, batch, length, dtype, mode, family)
        if need > max_bytes:
            return _row(name, length, batch, d_model, mode, device, dtype,
                        status=f"skipped: estimated {need / 2**20:.0f} MiB exceeds the budget of "
                               f"{max_bytes / 2**20:.0f} MiB")
    x = torch.randn(batch, length, d_model, device=device, dtype=dtype)

    if mode == "forward":
        def thunk():
            with torch.no_grad():
                return module(x)
    else:
        x.requires_grad_(True)

        def thunk():
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x).sum().backward()
    try:
        ms = time_fn(thunk, repeats=repeats, warmup=warmup, device=device)
        peak = peak_memory(thunk, device=device) if memory else None
    except ValueError as err:  # the mixer refuses this input (e.g. longer than its max_length)
        return _row(name, length, batch, d_model, mode, device, dtype, status=f"skipped: {err}")
    except Exception as err:  # noqa: BLE001 - only out-of-memory is turned into a row
        if not _is_oom(err):
            raise
        if kind == "cuda":
            torch.cuda.empty_cache()
        return _row(name, length, batch, d_model, mode, device, dtype, status="skipped: out of memory")
    return _row(name, length, batch, d_model, mode, device, dtype, ms, peak)


def measure_functions(factories: dict[str, Callable[[int], Callable[[], object]]], lengths: Iterable[int], *,
                      repeats: int = 3, warmup: int = 1, device="cpu", memory: bool = True,
                      progress: bool = False, mode: str = "forward", batch: int = 1,
                      d_model: int | None = None, dtype: str | torch.dtype = "") -> list[dict]:
    """Time arbitrary functions: ``factories[name](length)`` returns a zero-argument thunk.

    Building inputs happens in the factory, outside the timed and measured
    region. ``batch``, ``d_model`` and ``dtype`` are only copied into the rows,
    to describe what the factories built.
    """
    if not isinstance(factories, dict) or not factories:
        raise TypeError("factories must be a non-empty dict {name: length -> zero-argument callable}")
    lengths = [check_positive_int(int(n), "lengths") for n in lengths]
    kind = _device_type(device)
    rows: list[dict] = []
    bar = _progress(len(factories) * len(lengths), progress, "functions")
    for name, factory in factories.items():
        for length in lengths:
            bar.set_postfix_str(f"{name} L={length}")
            try:
                thunk = factory(length)
                ms = time_fn(thunk, repeats=repeats, warmup=warmup, device=device)
                peak = peak_memory(thunk, device=device) if memory else None
                row = _row(name, length, batch, d_model, mode, device, dtype, ms, peak)
            except Exception as err:  # noqa: BLE001 - only out-of-memory is turned into a row
                if not _is_oom(err):
                    raise
                if kind == "cuda":
                    torch.cuda.empty_cache()
                row = _row(name, length, batch, d_model, mode, device, dtype, status="skipped: out of memory")
            finally:
                thunk = None  # release the factory's inputs before the next length
            rows.append(row)
            bar.update()
    bar.close()
    return rows
