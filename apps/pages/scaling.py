"""Scaling: measure any registered mixers over sequence length, and plot recorded runs.

Widgets and layout only. The measuring is ``postlib.bench.measure_mixers``
(one point at a time, so the progress bar moves per point and a run can be
stopped between points); the figure is ``postlib.viz.scaling.scaling_figure``
(log-log, fitted exponents in the legend).

Measured points are cached for the whole server process, keyed by every
setting that changes the number (mixer, mode, width, batch, device, dtype,
length), so going back to a setting is instant and a second browser session
reuses the first one's points. The figure always shows the cached points for
the current settings; "Run" measures the missing ones in a background thread.
Only one measurement runs at a time per process: two at once on the same
cores would time each other.
"""
from __future__ import annotations

import os
import threading

import panel as pn
import param
import torch

import postlib
from apps.results import describe_provenance, plottable_rows, recorded_files, timing_rows
from apps.widgets import ErrorAlert, format_bytes, memory_budget_bytes, over_budget_message, plotly_pane
from postlib import bench
from postlib.viz.scaling import scaling_figure

MODES = {"forward": "forward", "forward + backward": "forward_backward"}
METRICS = {"time (ms)": "time_ms", "peak memory (bytes)": "peak_mem_bytes"}
WIDTHS = [16, 32, 64, 128, 256]
# Lengths are powers of two, 2**4 .. 2**14 on a CPU (2**16 on a GPU): beyond that
# a quadratic mixer takes minutes per point on a laptop.
LOG2_MIN = 4
LOG2_MAX = 16 if torch.cuda.is_available() else 14
BATCH = 1
DTYPE = torch.float32
REPEATS, WARMUP = 5, 1
# Shown on first load, and measured then if not cached: a few seconds on a laptop CPU, and long
# enough that the work, not Python's per-call overhead, sets the slope.
DEFAULT_LOG2 = (8, 11)
DEFAULT_PARTNERS = ("linear", "s4d", "performer", "mamba")

# CPU threads for a measurement. One by default: on a machine whose cores are busy with other
# work, torch's OpenMP threads wait on each other and a 1 ms matmul can take 100 ms.
THREAD_CHOICES = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= (os.cpu_count() or 1)]

# Process-wide: points measured by any session, and the lock that keeps measurements one at a time.
_CACHE: dict[tuple, dict] = {}
_CACHE_LOCK = threading.Lock()
_MEASURE_LOCK = threading.Lock()


def cache_key(name: str, length: int, settings: dict) -> tuple:
    """Everything that changes a measured number (batch and dtype are fixed on this page)."""
    return (name, int(length), settings["mode"], int(settings["d_model"]), str(settings["device"]),
            int(settings["threads"]), BATCH, str(DTYPE))


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def lengths_for(log2_range) -> list[int]:
    lo, hi = (int(v) for v in log2_range)
    if lo > hi:
        lo, hi = hi, lo
    return [2 ** k for k in range(lo, hi + 1)]


def default_mixers(names: list[str]) -> list[str]:
    """Softmax beside one cheap sub-quadratic mixer, when registered: the contrast the page is about."""
    picks = [n for n in ("softmax",) if n in names]
    picks += [n for n in DEFAULT_PARTNERS if n in names][:1]
    return picks or names[:1]


class ScalingPage(pn.viewable.Viewer):
    """How time and memory grow with sequence length, measured live or read from a recorded run."""

    mixers = param.ListSelector(default=[], objects=[], doc="Registered mixers to measure.")
    log2_lengths = param.Range(default=DEFAULT_LOG2, bounds=(LOG2_MIN, LOG2_MAX),
                               doc="Smallest and largest length, as powers of two.")
    mode = param.Selector(default="forward", objects=list(MODES.values()))
    metric = param.Selector(default="time_ms", objects=list(METRICS.values()))
    d_model = param.Selector(default=64, objects=WIDTHS)
    device = param.Selector(default="cpu", objects=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    threads = param.Selector(default=1, objects=THREAD_CHOICES, doc="torch CPU threads while measuring.")
    recorded = param.Selector(default=None, objects=[], allow_None=True, doc="A recorded results file.")
    running = param.Boolean(default=False, doc="True while the background thread measures.")

    def __init__(self, autorun: bool = True, **params):
        names = postlib.list_mixers()
        self.param.mixers.objects = list(names)
        if "mixers" not in params:
            params["mixers"] = default_mixers(names)
        super().__init__(**params)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alert = ErrorAlert()
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["scaling-status"])
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.skipped = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False)
        self.machine = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        self.figure = plotly_pane(css_classes=["scaling-live"])
        self.recorded_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.recorded_figure = plotly_pane(visible=False, css_classes=["scaling-recorded"])
        self.recorded_table = pn.pane.DataFrame(None, visible=False, sizing_mode="stretch_width", max_rows=60)
        self.run_button = pn.widgets.Button(label="Run", color="primary")
        self.stop_button = pn.widgets.Button(label="Stop", color="default", disabled=True)
        self.refresh_button = pn.widgets.Button(label="Refresh list", color="light")
        self.run_button.on_click(self.alert.guard(lambda _e: self.run()))
        self.stop_button.on_click(self.alert.guard(lambda _e: self.stop()))
        self.recorded_select = pn.widgets.Select.from_param(self.param.recorded, label="Results file")
        self.refresh_button.on_click(self.alert.guard(lambda _e: self.refresh_recorded()))
        self.param.watch(self.alert.guard(self._on_settings), ["mixers", "log2_lengths", "mode", "metric",
                                                               "d_model", "device", "threads"])
        self.param.watch(self.alert.guard(lambda _e: self.show_recorded()), ["recorded"])
        self.param.watch(self.alert.guard(lambda _e: self.show_recorded()), ["metric"])
        # Guarded even here: a broken results file or figure must show an alert, not hide the page.
        self.alert.guard(self.refresh_recorded)()
        self.alert.guard(self.redraw)()
        self.alert.guard(self.describe_machine)()
        if autorun and self.missing_points():
            # After the browser has loaded the page (at once outside a server): measuring while the
            # server renders the page would time the rendering too.
            pn.state.onload(self.alert.guard(self.run))

    # ----- settings -> points -------------------------------------------------------------------
    def points(self) -> list[tuple[str, int]]:
        """(mixer, length) pairs the current settings ask for."""
        return [(name, length) for name in self.mixers for length in lengths_for(self.log2_lengths)]

    def settings(self) -> dict:
        """The settings a measurement depends on (a snapshot: the thread must not see later changes)."""
        return dict(mode=self.mode, d_model=self.d_model, device=self.device, threads=self.threads)

    def missing_points(self) -> list[tuple[str, int]]:
        settings = self.settings()
        with _CACHE_LOCK:
            return [(n, L) for n, L in self.points() if cache_key(n, L, settings) not in _CACHE]

    def cached_rows(self) -> list[dict]:
        settings = self.settings()
        with _CACHE_LOCK:
            found = [_CACHE.get(cache_key(n, L, settings)) for n, L in self.points()]
        return [r for r in found if r is not None]

    def budget_refusal(self, points: list[tuple[str, int]] | None = None, budget: int | None = None) -> str | None:
        """The refusal message if any point's estimated working set exceeds the budget, else None.

        Estimates come from ``postlib.bench.estimate_bytes`` (a mixer's own
        ``memory_estimate`` when it has one, else the dense score matrix per head
        for attention-like families), so the page refuses exactly what the
        benchmark would skip, before anything is allocated.
        """
        points = self.points() if points is None else points
        budget = memory_budget_bytes() if budget is None else budget
        worst: dict[str, tuple[int, int, bool]] = {}
        for name in {n for n, _ in points}:
            module = postlib.build_mixer(name, self.d_model)
            family = postlib.mixer_info(name).family
            longest = max(L for n, L in points if n == name)
            worst[name] = (longest, bench.estimate_bytes(module, BATCH, longest, DTYPE, self.mode, family),
                           hasattr(module, "memory_estimate"))
        over = {n: v for n, v in worst.items() if v[1] > budget}
        if not over:
            return None
        name, (length, need, exact) = max(over.items(), key=lambda kv: kv[1][1])
        message = over_budget_message(f"`{name}` at length {length} ({self.mode.replace('_', ' + ')}, "
                                      f"d_model {self.d_model})", need, budget)
        if not exact:  # say what the number is: the bench's generic bound, not this mixer's own count
            message += (" (The estimate is `postlib.bench.estimate_bytes`'s generic bound for the "
                        f"{postlib.mixer_info(name).family} family; the mixer defines no `memory_estimate`.)")
        return message

    # ----- measuring ------------------------------------------------------------------------------
    def run(self, background: bool = True) -> None:
        """Measure the missing points of the current settings (refused if over the memory budget)."""
        if self.running:
            self.status.object = "A measurement is already running on this page; press Stop first."
            return
        self.alert.clear()
        if not self.mixers:
            self.alert.show("Pick at least one mixer to measure.", kind="warning")
            return
        todo = self.missing_points()
        if not todo:
            self.redraw()
            self.status.object = f"All {len(self.points())} points for these settings are already measured (cached)."
            return
        refusal = self.budget_refusal(todo)
        if refusal:
            self.alert.show(refusal, kind="warning")
            return
        settings = self.settings()
        self._stop.clear()
        self.running = True
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.max, self.progress.value, self.progress.visible = len(todo), 0, True
        if background:
            self._thread = threading.Thread(target=self._measure, args=(todo, settings), daemon=True,
                                            name="scaling-page-measure")
            self._thread.start()
        else:
            self._measure(todo, settings)

    def stop(self) -> None:
        self._stop.set()
        self.status.object = "Stopping after the current point…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background measurement ends; True when it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _measure(self, todo, settings) -> None:
        done, final = 0, None
        try:
            if not _MEASURE_LOCK.acquire(blocking=False):
                self.status.object = "Waiting for another session's measurement to finish…"
                _MEASURE_LOCK.acquire()
            threads_before = torch.get_num_threads()  # process-wide: restored after the run
            torch.set_num_threads(settings["threads"])
            try:
                for name, length in todo:
                    if self._stop.is_set():
                        break
                    key = cache_key(name, length, settings)
                    with _CACHE_LOCK:
                        cached = key in _CACHE
                    if not cached:  # another session may have measured it meanwhile
                        self.status.object = (f"Measuring `{name}` at length {length} "
                                              f"({settings['mode'].replace('_', ' + ')}) — point {done + 1} of {len(todo)}…")
                        row = self._measure_point(name, length, settings)
                        with _CACHE_LOCK:
                            _CACHE[key] = row
                    done += 1
                    self.progress.value = done
                    self.redraw()
            finally:
                torch.set_num_threads(threads_before)
                _MEASURE_LOCK.release()
            stopped = self._stop.is_set() and done < len(todo)
            final = (f"Stopped after {done} of {len(todo)} points." if stopped
                     else f"Measured {done} point{'s' * (done != 1)} in this run.")
        except Exception as exc:  # the thread must report, never die silently
            self.alert.show(f"**Measurement failed:** {type(exc).__name__}: {exc}")
            final = f"Failed after {done} of {len(todo)} points."
        finally:
            self.running = False
            self.run_button.disabled, self.stop_button.disabled = False, True
            self.progress.visible = False
            try:
                self.redraw()
            except Exception as exc:
                self.alert.show(f"**Drawing failed:** {type(exc).__name__}: {exc}")
            if final:
                self.status.object = f"{final} {self.status.object}"
            self.alert.guard(self.describe_machine)()

    @staticmethod
    def _measure_point(name: str, length: int, settings: dict) -> dict:
        """One row from ``measure_mixers``; a mixer that raises becomes an error row, not a dead run."""
        try:
            (row,) = bench.measure_mixers([name], [length], d_model=settings["d_model"], batch=BATCH,
                                          modes=(settings["mode"],), device=settings["device"], dtype=DTYPE,
                                          repeats=REPEATS, warmup=WARMUP, memory=True,
                                          max_bytes=memory_budget_bytes())
        except Exception as exc:
            row = dict(name=name, length=length, batch=BATCH, d_model=settings["d_model"], mode=settings["mode"],
                       time_ms=None, peak_mem_bytes=None, device=settings["device"], dtype=str(DTYPE),
                       status=f"error: {type(exc).__name__}: {exc}")
        return row

    # ----- drawing --------------------------------------------------------------------------------
    def _on_settings(self, _event=None) -> None:
        self.alert.clear()
        self.redraw()
        self.describe_machine()

    def redraw(self) -> None:
        rows = self.cached_rows()
        metric_label = next(k for k, v in METRICS.items() if v == self.metric)
        title = f"{metric_label} vs length — {self.mode.replace('_', ' + ')}, d_model {self.d_model}, {self.device}"
        drawable = plottable_rows(rows, self.metric)
        if drawable:
            self.figure.object = scaling_figure(drawable, metric=self.metric, title=title, fit=True)
        self.figure.visible = bool(drawable)  # nothing measured yet: the status line says so, no empty axes
        problems = [f"- `{r['name']}` at {r['length']}: {r['status']}" for r in rows if r.get("status") != "ok"]
        self.skipped.object = "**Not measured:**\n" + "\n".join(problems) if problems else ""
        self.skipped.visible = bool(problems)
        if not self.running:
            missing = len(self.points()) - len(rows)
            self.status.object = (f"{missing} of {len(self.points())} points not measured yet for these settings "
                                  "— press **Run**." if missing else
                                  f"Showing {len(rows)} measured points (cached).")

    def describe_machine(self) -> None:
        """Where the live numbers come from, with the load: on a shared machine, load is noise."""
        prov = bench.provenance(self.device)
        load = prov.get("load_avg_1m_5m_15m")
        self.machine.object = (f"Live numbers from this server: {prov.get('device_name')}, torch {prov.get('torch')}"
                               + (f", {self.threads} of {prov['cpu_count']} CPU threads" if self.device == "cpu" else "")
                               + (f", load average {load[0]} (1 min)" if load else "")
                               + f"; batch {BATCH}, {str(DTYPE).replace('torch.', '')}, median of {REPEATS} runs. "
                               "Other work on the machine shows up as noise, most at short lengths.")

    # ----- recorded results -----------------------------------------------------------------------
    def refresh_recorded(self) -> None:
        files = recorded_files()
        self.param.recorded.objects = list(files)  # a copy: param may append the default (None) in place
        if self.recorded not in files:
            self.recorded = files[0] if files else None
        self.recorded_select.visible = bool(files)  # an empty list would show a lone "None"
        self.show_recorded()

    def show_recorded(self) -> None:
        if self.recorded is None:
            self.recorded_info.object = (f"No recorded results yet in `{bench.RESULTS_DIR}`. Record some with "
                                         "`python -m postlib.bench` on this machine, or `make gpu-check` on a "
                                         "CUDA machine, then press *Refresh list*.")
            self.recorded_figure.visible = self.recorded_table.visible = False
            return
        import pandas as pd

        doc = bench.load_results(bench.RESULTS_DIR / self.recorded)
        rows = [r for r in doc.get("rows") or [] if isinstance(r, dict)]
        drawable = plottable_rows(rows + timing_rows(rows), self.metric)
        # Rows that are not scaling measurements (correctness checks, timings without a length) as a table.
        other = [r for r in rows if r.get("name") is None]
        self.recorded_info.object = describe_provenance(doc)
        if drawable:
            self.recorded_figure.object = scaling_figure(drawable, metric=self.metric, title=doc.get("title"),
                                                         fit=True, provenance=doc.get("provenance"))
        else:
            self.recorded_info.object += f"\n\nThis file has no `{self.metric}` per length to plot."
        if other:
            self.recorded_table.object = pd.DataFrame(other)
        self.recorded_figure.visible, self.recorded_table.visible = bool(drawable), bool(other)

    # ----- layout ---------------------------------------------------------------------------------
    def __panel__(self):
        lengths = pn.widgets.IntRangeSlider.from_param(
            self.param.log2_lengths, label="Length range (log2: 2^min … 2^max)", start=LOG2_MIN, end=LOG2_MAX, step=1)
        controls = pn.Column(
            pn.widgets.MultiChoice.from_param(self.param.mixers, label="Mixers"),
            lengths,
            pn.widgets.RadioButtonGroup.from_param(self.param.mode, options=MODES, label="Mode"),
            pn.widgets.RadioButtonGroup.from_param(self.param.metric, options=METRICS, label="Metric"),
            pn.widgets.Select.from_param(self.param.d_model, label="d_model"),
            pn.widgets.Select.from_param(self.param.device, label="Device"),
            pn.widgets.Select.from_param(self.param.threads, label="CPU threads"),
            pn.Row(self.run_button, self.stop_button),
            pn.pane.Markdown(f"Memory budget per run: {format_bytes(memory_budget_bytes())}; longer settings "
                             "are refused before anything is allocated.", styles={"font-size": "0.8em"}),
            width=320)
        live = pn.Column(self.alert.pane, self.status, self.progress, self.figure, self.machine, self.skipped,
                         sizing_mode="stretch_width")
        recorded = pn.Column(
            "## Recorded results",
            pn.Row(self.recorded_select, self.refresh_button),
            self.recorded_info, self.recorded_figure, self.recorded_table, sizing_mode="stretch_width")
        intro = pn.pane.Markdown(
            "# Scaling with sequence length\nPick mixers and a range of lengths, then **Run**: each point is "
            "measured on this server with `postlib.bench.measure_mixers` and drawn on log-log axes, with the "
            "fitted exponent in the legend (≈1 linear, ≈2 quadratic). Points are cached, so revisiting a "
            "setting is instant.", sizing_mode="stretch_width")
        # A Markdown rule, not pn.layout.Divider: a Divider added after the first render (as the
        # dashboard does when it switches pages) loads its CSS from cdn.holoviz.org (Panel 1.9.4).
        return pn.Column(intro, pn.Row(controls, live, sizing_mode="stretch_width"),
                         pn.pane.Markdown("---", sizing_mode="stretch_width"), recorded, sizing_mode="stretch_width")


PAGE = {"title": "Scaling", "order": 90, "viewer": ScalingPage}
