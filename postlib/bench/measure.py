"""Sweeps: every registered mixer (or any set of functions) over sequence lengths.

Each measurement is one *row*, a flat dict with the same keys everywhere
(``ROW_KEYS``), so results from the chapters, the dashboard and the CLI can be
saved, reloaded and plotted by the same code (``postlib.viz.scaling``).

A configuration that would not fit is *skipped*, not crashed on: with
``max_bytes`` set, a mixer whose own upper bound (``estimate_bytes``, the
mixer's ``memory_estimate``) reaches the budget gets ``status = "skipped: ..."``
and no timing, before anything is allocated. A mixer without an estimate is
measured cautiously: its peak is measured at a short probe length first, and
a longer length runs only if that peak, scaled as L² from the longest length
measured so far, stays below the budget. An out-of-memory error during a run,
and a ``ValueError`` by which a mixer refuses an input (say, a length beyond its
``max_length``), are recorded as skipped rows too. Any other exception is a bug
and propagates.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

from .._checks import check_choice, check_int_list, check_positive_int
from ..registry import ESTIMATE_MODES
from .core import _device_type, peak_memory, time_fn

ROW_KEYS = ("name", "length", "batch", "d_model", "mode", "time_ms", "peak_mem_bytes", "device", "dtype", "status")
MODES = ESTIMATE_MODES
# A mixer without a memory estimate is first measured at this length, and longer lengths are
# extrapolated from its largest measured peak, assuming the worst growth among the book's mixers (L²).
PROBE_LENGTH = 64


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


def fit_rows(rows: list[dict], metrics=("time_ms", "peak_mem_bytes")) -> dict:
    """Fitted log-log exponent per name (and mode) and metric, over the rows with status "ok"."""
    fits: dict[str, dict] = {}
    groups: dict[str, list[dict]] = {}
    modes = {r.get("mode") for r in rows}
    for r in rows:
        if r.get("status", "ok") == "ok":
            key = r["name"] if len(modes) == 1 else f"{r['name']} ({r['mode']})"
            groups.setdefault(key, []).append(r)
    for key, group in groups.items():
        fits[key] = {}
        for metric in metrics:
            pts = [(g["length"], g[metric]) for g in group if g.get(metric)]
            if len({p[0] for p in pts}) >= 2:
                fits[key][metric] = round(fit_exponent(*zip(*pts)), 3)
    return fits


def estimate_bytes(module, batch: int, length: int, dtype: torch.dtype, mode: str = "forward") -> int | None:
    """The mixer's own upper bound on the peak bytes of one call (``Mixer.memory_estimate``), or None.

    None means unknown: the module has no ``memory_estimate``, or it returns None (the
    ``Mixer`` default). Nothing is guessed from the mixer's family: a sparse attention
    mixer is not charged for an L × L matrix it never builds.
    """
    check_positive_int(batch, "batch")
    check_positive_int(length, "length")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    check_choice(mode, "mode", MODES)
    method = getattr(module, "memory_estimate", None)
    if method is None:
        return None
    value = method(batch, length, dtype, mode)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{type(module).__name__}.memory_estimate must return an int >= 0 or None, got {value!r}")
    return value


def budget_refusal(module, batch: int, length: int, dtype: torch.dtype, mode: str, max_bytes: int) -> str | None:
    """Why one call would not fit ``max_bytes``, or None when its estimate is below it.

    Refuses when the estimate is at least the budget (exactly the budget does not fit), and
    when there is no estimate at all (``measure_mixers`` then measures cautiously instead).
    """
    need = estimate_bytes(module, batch, length, dtype, mode)
    if need is None:
        return (f"no memory estimate: {type(module).__name__} defines no memory_estimate, so it cannot be "
                f"held to the budget of {max_bytes / 2**20:.0f} MiB before it runs")
    if need >= max_bytes:
        return f"estimated {need / 2**20:.0f} MiB exceeds the budget of {max_bytes / 2**20:.0f} MiB"
    return None


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


def mixer_thunk(module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    """The call the bench times and measures: ``module(x)`` under no_grad, or forward then ``.sum().backward()``.

    For ``"forward_backward"`` ``x`` gets ``requires_grad``; gradients from an earlier
    call are dropped first. ``tests/test_registry.py`` holds every ``memory_estimate``
    to the peak of exactly this call.
    """
    check_choice(mode, "mode", MODES)
    if mode == "forward":
        def thunk():
            with torch.no_grad():
                return module(x)
        return thunk
    x.requires_grad_(True)

    def thunk():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()
    return thunk


def measure_mixers(names: Iterable[str], lengths: Iterable[int], *, d_model: int = 64, batch: int = 1,
                   modes: Sequence[str] = MODES, device="cpu", dtype: torch.dtype = torch.float32,
                   repeats: int = 3, warmup: int = 1, memory: bool = True, mixer_config: dict | None = None,
                   progress: bool = False, max_bytes: int | None = None) -> list[dict]:
    """Time (and measure the peak memory of) each mixer at each length, in each mode.

    Args:
        names: registered mixer names (``postlib.list_mixers()``).
        lengths: sequence lengths (ints >= 1); the input is ``randn(batch, length, d_model)``.
        modes: ``"forward"`` (under ``torch.no_grad``) and/or ``"forward_backward"``
            (forward, then ``output.sum().backward()``).
        repeats, warmup: timed calls (>= 1) and discarded calls before them (>= 0).
        mixer_config: constructor kwargs for every mixer, or ``{name: kwargs}``.
        max_bytes: the memory budget. A configuration runs only if the mixer's
            ``memory_estimate`` is below it (``budget_refusal``); a mixer without one is
            measured cautiously (see the module docstring).
    Returns: one row per (name, length, mode), keys ``ROW_KEYS``.
    """
    from ..registry import build_mixer, mixer_info

    names, lengths, modes = list(names), check_int_list(lengths, "lengths"), list(modes)
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"modes must be a subset of {list(MODES)}, got {mode!r}")
    check_positive_int(d_model, "d_model")
    check_positive_int(batch, "batch")
    check_positive_int(repeats, "repeats")
    check_positive_int(warmup, "warmup", minimum=0)
    if max_bytes is not None:
        check_positive_int(max_bytes, "max_bytes")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    kind = _device_type(device)
    for name in names:
        mixer_info(name)  # fail before any timing with a list of valid names
    rows: list[dict] = []
    bar = _progress(len(names) * len(lengths) * len(modes), progress, "mixers")
    for name in names:
        module = build_mixer(name, d_model, **_config_for(name, names, mixer_config)).to(device=device, dtype=dtype)
        measured: dict[str, tuple[int, int]] = {}   # mode -> (longest length measured, its peak), for the cautious path
        for length in lengths:
            for mode in modes:
                bar.set_postfix_str(f"{name} L={length} {mode}")
                rows.append(_measure_one(module, name, length, batch, d_model, mode, device, kind, dtype, repeats,
                                         warmup, memory, max_bytes, measured))
                bar.update()
        del module
    bar.close()
    return rows


def _cautious_refusal(module, batch, length, d_model, mode, device, dtype, max_bytes, measured) -> str | None:
    """For a mixer without an estimate: probe a short length, extrapolate as L², refuse if it would not fit."""
    if mode not in measured:
        probe = min(length, PROBE_LENGTH)
        x = torch.randn(batch, probe, d_model, device=device, dtype=dtype)
        measured[mode] = (probe, peak_memory(mixer_thunk(module, x, mode), device=device))
    longest, peak = measured[mode]
    need = int(peak * max(1.0, (length / longest) ** 2))
    if need >= max_bytes:
        return (f"skipped: no memory estimate; the peak measured at length {longest}, scaled as L², predicts "
                f"{need / 2**20:.0f} MiB, over the budget of {max_bytes / 2**20:.0f} MiB")
    return None


def _measure_one(module, name, length, batch, d_model, mode, device, kind, dtype, repeats, warmup, memory,
                 max_bytes, measured) -> dict:
    def skipped(status):
        return _row(name, length, batch, d_model, mode, device, dtype, status=status)

    if max_bytes is not None:
        if estimate_bytes(module, batch, length, dtype, mode) is None:
            refusal = _cautious_refusal(module, batch, length, d_model, mode, device, dtype, max_bytes, measured)
        else:
            refusal = budget_refusal(module, batch, length, dtype, mode, max_bytes)
            refusal = refusal and f"skipped: {refusal}"
        if refusal:
            return skipped(refusal)
    thunk = mixer_thunk(module, torch.randn(batch, length, d_model, device=device, dtype=dtype), mode)
    try:
        ms = time_fn(thunk, repeats=repeats, warmup=warmup, device=device)
        peak = peak_memory(thunk, device=device) if memory else None
    except ValueError as err:  # the mixer refuses this input (e.g. longer than its max_length)
        return skipped(f"skipped: {err}")
    except Exception as err:  # noqa: BLE001 - only out-of-memory is turned into a row
        if not _is_oom(err):
            raise
        if kind == "cuda":
            torch.cuda.empty_cache()
        return skipped("skipped: out of memory")
    if peak is not None and length >= measured.get(mode, (0, 0))[0]:
        measured[mode] = (length, peak)
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
    lengths = check_int_list(lengths, "lengths")
    check_positive_int(repeats, "repeats")
    check_positive_int(warmup, "warmup", minimum=0)
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
