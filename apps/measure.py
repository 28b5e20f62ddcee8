"""Live measurements for the dashboard: one shared cache of measured points, one run at a time.

The Scaling page measures mixers on the server while readers watch. What must
be shared by every session of the server process lives here, not in the page:

* :class:`PointCache` — every measured point, keyed by everything that
  changes the number (mixer, length, mode, width, device, threads, batch,
  dtype), so going back to a setting is instant and a second session reuses
  the first one's points;
* the measuring lock — two measurements at once on the same cores would time
  each other, so runs queue;
* :class:`MeasurementRun` — one background thread measuring a list of points,
  reporting through callbacks, stoppable between points, and giving memory
  back (``apps.budget.release_memory``) when it ends.

A run refuses before anything is allocated: :func:`budget_refusal_for` checks
every point's ``postlib.bench.estimate_bytes`` against the budget first (an
unknown estimate is refused too), and each point is measured with the
budget as ``max_bytes`` as a second guard.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import torch

import postlib
from apps.budget import budget_refusal, memory_budget_bytes, release_memory
from postlib import bench

log = logging.getLogger("apps.measure")

BATCH = 1
DTYPE = torch.float32
REPEATS, WARMUP = 5, 1


@dataclass(frozen=True)
class Settings:
    """What a measured number depends on besides the mixer and the length."""

    mode: str = "forward"
    d_model: int = 64
    device: str = "cpu"
    threads: int = 1

    def key(self, name: str, length: int) -> tuple:
        return (name, int(length), self.mode, int(self.d_model), str(self.device), int(self.threads), BATCH,
                str(DTYPE))

    @property
    def mode_label(self) -> str:
        return self.mode.replace("_", " + ")


class PointCache:
    """Measured rows, keyed by :meth:`Settings.key`; safe to use from any thread."""

    def __init__(self):
        self._rows: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __contains__(self, key: tuple) -> bool:
        with self._lock:
            return key in self._rows

    def put(self, key: tuple, row: dict) -> None:
        with self._lock:
            self._rows[key] = row

    def rows(self, points: list[tuple[str, int]], settings: Settings) -> list[dict]:
        with self._lock:
            found = [self._rows.get(settings.key(n, L)) for n, L in points]
        return [r for r in found if r is not None]

    def missing(self, points: list[tuple[str, int]], settings: Settings) -> list[tuple[str, int]]:
        with self._lock:
            return [(n, L) for n, L in points if settings.key(n, L) not in self._rows]


POINTS = PointCache()
# Held while a run measures: two runs at once on the same cores would time each other.
MEASURE_LOCK = threading.Lock()


def budget_refusal_for(points: list[tuple[str, int]], settings: Settings, budget: int | None = None) -> str | None:
    """The refusal message if any point does not fit the memory budget, else None; allocates no input.

    Each mixer is checked at its longest requested length with
    ``postlib.bench.estimate_bytes`` (the mixer's own ``memory_estimate``;
    ``None`` means unknown and is refused). Building the mixer allocates only
    its parameters.
    """
    budget = memory_budget_bytes() if budget is None else budget
    worst: list[tuple[int | None, str, int]] = []
    for name in dict.fromkeys(n for n, _ in points):
        longest = max(L for n, L in points if n == name)
        module = postlib.build_mixer(name, settings.d_model)
        need = bench.estimate_bytes(module, BATCH, longest, DTYPE, settings.mode)
        worst.append((need, name, longest))
    # An unknown estimate first, then the largest.
    for need, name, length in sorted(worst, key=lambda w: (w[0] is not None, -(w[0] or 0))):
        message = budget_refusal(f"`{name}` at length {length} ({settings.mode_label}, d_model {settings.d_model})",
                                 need, budget,
                                 unknown=f"`{name}` defines no `memory_estimate` (see CONTRACTS.md §1).")
        if message:
            return message
    return None


def measure_point(name: str, length: int, settings: Settings, budget: int | None = None) -> dict:
    """One row from ``postlib.bench.measure_mixers``; a mixer that raises becomes an error row."""
    try:
        (row,) = bench.measure_mixers([name], [length], d_model=settings.d_model, batch=BATCH, modes=(settings.mode,),
                                      device=settings.device, dtype=DTYPE, repeats=REPEATS, warmup=WARMUP, memory=True,
                                      max_bytes=memory_budget_bytes() if budget is None else budget)
    except Exception as exc:  # noqa: BLE001 - shown on the page as a row, the run goes on
        row = dict(name=name, length=length, batch=BATCH, d_model=settings.d_model, mode=settings.mode,
                   time_ms=None, peak_mem_bytes=None, device=settings.device, dtype=str(DTYPE),
                   status=f"error: {type(exc).__name__}: {exc}")
    return row


@dataclass
class Progress:
    """What a run reports after each point and when it ends."""

    done: int
    total: int
    message: str
    finished: bool = False
    error: str | None = None
    released_bytes: int = 0


class MeasurementRun:
    """Measure ``todo`` points (in a thread, or inline) into :data:`POINTS`, one run at a time per process.

    ``report(progress)`` is called before each point, after each point and at
    the end (``progress.finished``). :meth:`stop` ends the run after the point
    being measured; :meth:`detach` also silences ``report`` (the session that
    watched the run has gone: its panes must not be touched any more).
    """

    def __init__(self, todo: list[tuple[str, int]], settings: Settings, report: Callable[[Progress], None],
                 cache: PointCache = POINTS, budget: int | None = None):
        self.todo, self.settings, self.cache = list(todo), settings, cache
        self._report, self._budget = report, budget
        self._stop = threading.Event()
        self._detached = False
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, background: bool = True) -> None:
        if background:
            self._thread = threading.Thread(target=self.run, daemon=True, name="dashboard-measure")
            self._thread.start()
        else:
            self.run()

    def stop(self) -> None:
        self._stop.set()

    def detach(self) -> None:
        self._detached = True
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends; True when it has (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def report(self, progress: Progress) -> None:
        if self._detached:
            return
        try:
            self._report(progress)
        except Exception:  # a page that cannot show progress must not kill the measurement
            log.exception("reporting measurement progress failed")

    def run(self) -> None:
        total, done, error = len(self.todo), 0, None
        try:
            if not MEASURE_LOCK.acquire(blocking=False):
                self.report(Progress(0, total, "Waiting for another session's measurement to finish…"))
                MEASURE_LOCK.acquire()
            threads_before = torch.get_num_threads()  # process-wide: restored after the run
            torch.set_num_threads(self.settings.threads)
            try:
                for name, length in self.todo:
                    if self._stop.is_set():
                        break
                    key = self.settings.key(name, length)
                    if key not in self.cache:  # another session may have measured it meanwhile
                        message = (f"Measuring `{name}` at length {length} ({self.settings.mode_label}) — "
                                   f"point {done + 1} of {total}…")
                        self.report(Progress(done, total, message))
                        self.cache.put(key, measure_point(name, length, self.settings, self._budget))
                    done += 1
                    self.report(Progress(done, total, ""))
            finally:
                torch.set_num_threads(threads_before)
                MEASURE_LOCK.release()
        except Exception as exc:  # the thread must report, never die silently
            log.exception("measurement failed")
            error = f"{type(exc).__name__}: {exc}"
        released = release_memory()
        if error is not None:
            message = f"Failed after {done} of {total} points."
        elif self._stop.is_set() and done < total:
            message = f"Stopped after {done} of {total} points."
        else:
            message = f"Measured {done} point{'s' * (done != 1)} in this run."
        self.report(Progress(done, total, message, finished=True, error=error, released_bytes=released))
