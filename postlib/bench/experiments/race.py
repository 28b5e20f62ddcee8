"""The scaling race: every registered mixer, forward and forward + backward, from short to very long sequences.

    python -m postlib.bench race                      # CPU: L = 256 … 65536, 2 GiB, ≤ 4 s a call, ≤ 9 min in all
    python -m postlib.bench race --device cuda        # GPU: writes gpu_race.json (``make gpu-race``), ≤ 2.5 min

Every mixer meets the same input, ``randn(batch, L, d_model)``, at the same
lengths, in both modes (``postlib.bench.mixer_thunk``). The race runs length by
length (all mixers at 256, then all at 512, ...), so a run that spends its time
budget loses the longest lengths of every mixer, never a whole mixer.

Nothing is allocated for a point that cannot fit. Before a point runs, in order:

* **memory** — the mixer's own upper bound (``postlib.bench.estimate_bytes``, the
  mixer's ``memory_estimate``) must stay below ``max_bytes``; otherwise the row's
  status is ``"over budget"`` and its ``reason`` gives both numbers. A mixer
  without an estimate is refused (``"no estimate"``): the race cannot vouch that
  it fits.
* **time** — the time of one call, predicted from the mixer's last measured
  lengths (``t·(L/L₀)^p``, the slope ``p`` of its last three points held between 1 and 2.5), must stay
  below ``max_call_s``, and the race's total time must stay below ``total_s``;
  otherwise the status is ``"over time budget"``.

A mixer that refuses the input (a ``ValueError``, e.g. a length beyond its
``max_length``) gets ``"refused"``, an out-of-memory error ``"out of memory"``.

Results: the rows, the fitted log-log exponents (``fits``, over each series' four
longest measured lengths, where constant overheads matter least), and the
crossover length of each mixer against softmax (``crossovers``, ``crossover_kinds``).
"""
from __future__ import annotations

import inspect
import math
import time
from typing import Iterable, Sequence

import torch

from ..._checks import check_choice, check_int_list, check_number, check_positive_int
from ..core import _device_type, peak_memory, time_fn
from ..measure import MODES, estimate_bytes, fit_exponent, mixer_thunk
from ._args import DTYPES, int_list, str_list

SUMMARY = "the scaling race: every mixer, both modes, L up to 64k, within a memory and a time budget"
RESULT = "cpu_race.json"
THREADS = 1

CPU_LENGTHS = [2 ** k for k in range(8, 17)]          # 256 … 65536
GPU_LENGTHS = [2 ** k for k in range(10, 19)]         # 1024 … 262144
# The command's time budgets: seconds for one predicted call, and for the whole race (the GPU race fits
# `make gpu-check`'s five minutes after the kernel checks).
CPU_TIME_BUDGET = {"max_call_s": 4.0, "total_s": 540.0}
GPU_TIME_BUDGET = {"max_call_s": 1.0, "total_s": 150.0}
BASELINE = "softmax"
FIT_POINTS = 4
PREDICT_POINTS = 3
MAX_PREDICT_EXPONENT = 2.5
STATUSES = ("ok", "over budget", "over time budget", "no estimate", "refused", "out of memory")


def default_budget_bytes(device) -> int:
    """2 GiB on a CPU (a shared laptop or CI worker); half the GPU's memory on CUDA."""
    if _device_type(device) == "cuda":
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory // 2)
    return 2 * 2 ** 30


def _constructor_config(name: str, d_model: int, lengths: Sequence[int], max_bytes: int) -> dict:
    """A mixer whose constructor takes ``max_length`` (learned projections, say) is built for the longest length
    whose parameters stay under a quarter of the budget, predicted before building it.

    The parameter bytes are counted at max_length 32, 64 and 128 (three small builds) and extended as
    a + b·n^q (a learned L × L matrix has q = 2); longer lengths are then refused by the mixer itself
    (its ``ValueError``, recorded as ``"refused"``).
    """
    from ...registry import build_mixer, mixer_info

    try:
        params = inspect.signature(mixer_info(name).factory).parameters
    except (TypeError, ValueError):
        return {}
    if "max_length" not in params:
        return {}
    p32, p64, p128 = (sum(p.numel() * p.element_size() for p in build_mixer(name, d_model, max_length=n).parameters())
                      for n in (32, 64, 128))
    if p128 <= p64:
        return {"max_length": max(lengths)}          # the parameters do not grow with max_length
    # exact for bytes = a + b·n^q: q from the two differences, then extended from n = 128
    q = math.log2((p128 - p64) / (p64 - p32)) if p64 > p32 else 2.0
    scale = (p128 - p64) / (128 ** q - 64 ** q)
    fitting = [n for n in lengths if p128 + scale * (n ** q - 128 ** q) < max_bytes / 4]
    return {"max_length": max(fitting)} if fitting else {}


def _predicted_ms(history: list[tuple[int, float]], length: int) -> tuple[float, float] | None:
    """(predicted ms at ``length``, exponent used) from the measured points so far, or None before any.

    The exponent is the log-log slope over the last three measured points (two at first; 2 after a
    single point), held between 1 and 2.5 so that one noisy point on a busy machine neither stops a
    mixer early nor lets it run on unchecked; the line is drawn from the last point.
    """
    if not history:
        return None
    l1, t1 = history[-1]
    p = 2.0 if len(history) < 2 else fit_exponent(*zip(*history[-PREDICT_POINTS:]))
    p = min(MAX_PREDICT_EXPONENT, max(1.0, p))
    return t1 * (length / l1) ** p, p


def _row(name, length, mode, *, batch, d_model, device, dtype, status="ok", time_ms=None, peak=None,
         estimate=None, reason="") -> dict:
    return dict(name=name, length=int(length), batch=batch, d_model=d_model, mode=mode,
                time_ms=None if time_ms is None else float(time_ms),
                peak_mem_bytes=None if peak is None else int(peak), device=str(device),
                dtype=str(dtype).replace("torch.", ""), status=status, reason=reason,
                estimate_bytes=estimate)


def race(names: Sequence[str] | None = None, lengths: Iterable[int] = CPU_LENGTHS, *, d_model: int = 64,
         batch: int = 1, modes: Sequence[str] = MODES, device="cpu", dtype: torch.dtype = torch.float32,
         max_bytes: int | None = None, max_call_s: float = 4.0, total_s: float = 540.0, repeats: int = 3,
         warmup: int = 1, progress: bool = False) -> list[dict]:
    """Race ``names`` (default: every registered mixer) over ``lengths``; one row per (mixer, length, mode).

    Every argument is checked before anything is built. ``max_bytes`` defaults to
    ``default_budget_bytes(device)``. Rows carry ``status`` (one of ``STATUSES``), a
    ``reason`` for every refusal, and the mixer's ``estimate_bytes``.
    """
    from ...registry import build_mixer, list_mixers, mixer_info

    names = list(list_mixers() if names is None else names)
    if not names:
        raise ValueError("names must list at least one registered mixer (postlib.list_mixers())")
    for name in names:
        mixer_info(name)  # an unknown name fails here, with the list of valid ones
    lengths = sorted(set(check_int_list(lengths, "lengths")))
    modes = list(modes)
    for mode in modes:
        check_choice(mode, "modes", MODES)
    check_positive_int(d_model, "d_model")
    check_positive_int(batch, "batch")
    check_positive_int(repeats, "repeats")
    check_positive_int(warmup, "warmup", minimum=0)
    check_number(max_call_s, "max_call_s", positive=True)
    check_number(total_s, "total_s", positive=True)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    kind = _device_type(device)
    max_bytes = default_budget_bytes(device) if max_bytes is None else check_positive_int(max_bytes, "max_bytes")

    common = dict(batch=batch, d_model=d_model, device=device, dtype=dtype)
    modules = {n: build_mixer(n, d_model, **_constructor_config(n, d_model, lengths, max_bytes)).to(device=device,
                                                                                                    dtype=dtype)
               for n in names}
    history: dict[tuple[str, str], list[tuple[int, float]]] = {}
    rows, start = [], time.monotonic()
    bar = _progress_bar(len(names) * len(lengths) * len(modes), progress)
    for length in lengths:
        for name in names:
            for mode in modes:
                bar.set_postfix_str(f"{name} L={length} {mode}")
                rows.append(_race_point(modules[name], name, length, mode, kind, max_bytes, max_call_s, total_s,
                                        start, history.setdefault((name, mode), []), repeats, warmup, common))
                bar.update()
    bar.close()
    return rows


class _Lines:
    """A progress report without tqdm (a bare GPU machine): one line per length."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.monotonic()

    def set_postfix_str(self, text: str) -> None:
        if text.endswith(" forward") and " L=" in text:
            print(f"race [{time.monotonic() - self.start:6.1f} s] {self.done}/{self.total} {text}", flush=True)

    def update(self) -> None:
        self.done += 1

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Lines(total) if enabled else _Quiet()
    return tqdm(total=total, desc="race", disable=not enabled, leave=False)


class _Quiet(_Lines):
    def __init__(self):
        super().__init__(0)

    def set_postfix_str(self, text: str) -> None:
        pass


def _race_point(module, name, length, mode, kind, max_bytes, max_call_s, total_s, start, history, repeats, warmup,
                common) -> dict:
    estimate = estimate_bytes(module, common["batch"], length, common["dtype"], mode)
    if estimate is None:
        return _row(name, length, mode, status="no estimate", **common,
                    reason=f"{type(module).__name__} defines no memory_estimate, so the race cannot hold it to "
                           f"the budget of {max_bytes / 2**20:.0f} MiB before it runs")
    refused = dict(estimate=estimate, **common)
    if estimate >= max_bytes:
        return _row(name, length, mode, status="over budget", **refused,
                    reason=f"estimated {estimate / 2**20:.0f} MiB, at or above the budget of "
                           f"{max_bytes / 2**20:.0f} MiB: refused before allocating anything")
    spent = time.monotonic() - start
    if spent >= total_s:
        return _row(name, length, mode, status="over time budget", **refused,
                    reason=f"the race's total time budget of {total_s:.0f} s was spent")
    predicted = _predicted_ms(history, length)
    if predicted is not None and predicted[0] >= 1e3 * max_call_s:
        return _row(name, length, mode, status="over time budget", **refused,
                    reason=f"one call predicted to take {predicted[0] / 1e3:.1f} s (L^{predicted[1]:.2f} from "
                           f"L={history[-1][0]}), at or above the budget of {max_call_s:g} s a call")
    x = torch.randn(common["batch"], length, common["d_model"], device=common["device"], dtype=common["dtype"])
    thunk = mixer_thunk(module, x, mode)
    try:
        ms = time_fn(thunk, repeats=repeats, warmup=warmup, device=common["device"])
        peak = peak_memory(thunk, device=common["device"])
    except ValueError as err:  # the mixer refuses this input (e.g. longer than its max_length)
        return _row(name, length, mode, status="refused", reason=str(err), **refused)
    except Exception as err:  # noqa: BLE001 - only out-of-memory becomes a row; anything else is a bug
        if not (isinstance(err, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(err).lower()):
            raise
        if kind == "cuda":
            torch.cuda.empty_cache()
        return _row(name, length, mode, status="out of memory", reason=str(err).splitlines()[0], **refused)
    finally:
        thunk = x = None
    history.append((length, ms))
    return _row(name, length, mode, time_ms=ms, peak=peak, **refused)


def _key(row: dict) -> str:
    return f"{row['name']} ({row['mode']})"


def series(rows: Iterable[dict], metric: str = "time_ms") -> dict[str, list[tuple[int, float]]]:
    """``{"<name> (<mode>)": [(length, value), ...]}`` over the rows with status "ok", sorted by length."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r.get("status") == "ok" and r.get(metric):
            out.setdefault(_key(r), []).append((int(r["length"]), float(r[metric])))
    return {k: sorted(v) for k, v in out.items()}


def race_fits(rows: Iterable[dict], points: int = FIT_POINTS) -> dict[str, dict[str, float]]:
    """Log-log exponent of time and peak memory per series, over its ``points`` longest measured lengths."""
    rows = list(rows)
    fits: dict[str, dict[str, float]] = {}
    for metric in ("time_ms", "peak_mem_bytes"):
        for key, pts in series(rows, metric).items():
            tail = pts[-points:]
            if len(tail) >= 2:
                fits.setdefault(key, {})[metric] = round(fit_exponent(*zip(*tail)), 3)
    return fits


def _local_power(pts: list[tuple[int, float]]) -> tuple[float, float]:
    """(exponent, log-intercept) of the straight line through the last two points of a log-log series."""
    (l0, t0), (l1, t1) = pts[-2], pts[-1]
    p = math.log(t1 / t0) / math.log(l1 / l0)
    return p, math.log(t1) - p * math.log(l1)


def crossover(mixer: list[tuple[int, float]], baseline: list[tuple[int, float]]) -> tuple[float | None, str]:
    """The length from which ``mixer`` is faster than ``baseline``, and how it was found.

    ``"measured"``: the two cross between two lengths both measured (log-log interpolation).
    ``"faster throughout"``: faster at every common length (the value is None: the crossover
    lies below the shortest length raced). ``"extrapolated"``: slower at every common length,
    but the baseline stopped (budget) while the mixer ran on; the baseline's last two points are
    extended as a power law to the mixer's longer lengths. ``"never"``: slower everywhere measured.
    """
    base, mine = dict(baseline), dict(mixer)
    common = sorted(set(base) & set(mine))
    if not common:
        return None, "no common length"
    faster = [mine[n] < base[n] for n in common]
    if all(faster):
        return None, "faster throughout"
    for (n0, f0), (n1, f1) in zip(zip(common, faster), zip(common[1:], faster[1:])):
        if not f0 and f1:
            d0, d1 = math.log(mine[n0] / base[n0]), math.log(mine[n1] / base[n1])
            frac = d0 / (d0 - d1)
            return round(math.exp(math.log(n0) + frac * (math.log(n1) - math.log(n0))), 1), "measured"
    if faster[0]:
        return None, "slower at long lengths"  # faster only at the short end: no crossover to report
    beyond = [(n, t) for n, t in sorted(mine.items()) if n > common[-1]]
    if len(baseline) >= 2 and beyond:
        p_base, c_base = _local_power(sorted(baseline))
        prev = (common[-1], math.log(mine[common[-1]]) - (c_base + p_base * math.log(common[-1])))
        for n, t in beyond:
            d = math.log(t) - (c_base + p_base * math.log(n))
            if d < 0:
                frac = prev[1] / (prev[1] - d)
                return round(math.exp(math.log(prev[0]) + frac * (math.log(n) - math.log(prev[0]))), 1), \
                    "extrapolated"
            prev = (n, d)
    return None, "never"


def crossovers(rows: Iterable[dict], baseline: str = BASELINE) -> dict[str, tuple[float | None, str]]:
    """``{"<name> (<mode>)": (length or None, kind)}`` against ``baseline`` in the same mode (see ``crossover``)."""
    times = series(rows, "time_ms")
    out = {}
    for key, pts in times.items():
        name, mode = key[:-1].rsplit(" (", 1)      # "<name> (<mode>)"
        base = times.get(f"{baseline} ({mode})")
        if name != baseline and base:
            out[key] = crossover(pts, base)
    return out


def describe_crossover(length: float | None, kind: str, lengths: Sequence[int]) -> str:
    """A crossover in words for a table cell: "≈ 1131", "below 256", "none up to 65536", "≈ 9800 (extrapolated)"."""
    if kind == "measured":
        return f"≈ {length:.0f}"
    if kind == "extrapolated":
        return f"≈ {length:.0f} (softmax extrapolated)"
    if kind == "faster throughout":
        return f"below {min(lengths)}"
    if kind in ("never", "slower at long lengths"):
        return f"none up to {max(lengths)}"
    return kind


def add_arguments(parser) -> None:
    parser.add_argument("--mixers", type=str_list, default=None,
                        help="comma-separated mixer names (default: every registered mixer)")
    parser.add_argument("--lengths", type=int_list, default=None,
                        help="comma-separated lengths (default: 256 … 65536 on CPU, 1024 … 262144 on CUDA)")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--modes", type=str_list, default=list(MODES), help=f"subset of {','.join(MODES)}")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda writes gpu_race.json by default)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-mib", type=float, default=None,
                        help="memory budget in MiB (default: 2048 on CPU, half the GPU's memory on CUDA)")
    parser.add_argument("--max-call-s", type=float, default=None,
                        help="time budget of one predicted call in seconds (default: 4 on CPU, 1 on CUDA)")
    parser.add_argument("--total-s", type=float, default=None,
                        help="time budget of the whole race in seconds (default: 540 on CPU, 150 on CUDA)")


def record(args) -> dict:
    gpu = _device_type(args.device) == "cuda"
    if gpu and args.out is None:
        from ..results_io import RESULTS_DIR
        args.out = str(RESULTS_DIR / "gpu_race.json")
    max_bytes = None if args.max_mib is None else int(args.max_mib * 2 ** 20)
    defaults = GPU_TIME_BUDGET if gpu else CPU_TIME_BUDGET
    max_call_s = args.max_call_s if args.max_call_s is not None else defaults["max_call_s"]
    total_s = args.total_s if args.total_s is not None else defaults["total_s"]
    lengths = args.lengths or (GPU_LENGTHS if gpu else CPU_LENGTHS)
    rows = race(args.mixers, lengths, d_model=args.d_model, batch=args.batch, modes=args.modes, device=args.device,
                dtype=DTYPES[args.dtype], max_bytes=max_bytes, max_call_s=max_call_s, total_s=total_s,
                repeats=args.repeats, warmup=args.warmup, progress=not args.quiet)
    budget = max_bytes or default_budget_bytes(args.device)
    found = crossovers(rows)
    return {"title": f"The scaling race, d_model={args.d_model}, batch={args.batch}", "rows": rows,
            "notes": (f"budgets: {budget / 2**20:.0f} MiB, {max_call_s:g} s a call, {total_s:g} s in all; "
                      f"medians of {args.repeats} after {args.warmup} warm-up; exponents over each series' "
                      f"{FIT_POINTS} longest lengths"),
            "budget": {"max_bytes": budget, "max_call_s": max_call_s, "total_s": total_s},
            "fits": race_fits(rows), "crossovers": {k: v[0] for k, v in found.items()},
            "crossover_kinds": {k: v[1] for k, v in found.items()}}
