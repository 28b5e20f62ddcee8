"""Scaling: measure any registered mixers over sequence length, and plot recorded runs.

Widgets and layout only. Measuring is ``apps.measure`` (the process-wide cache
of measured points, one run at a time, in a background thread, over
``postlib.bench.measure_mixers``); the figure is
``postlib.viz.scaling.scaling_figure`` (log-log, fitted exponents in the
legend). The figure always shows the cached points for the current settings;
"Run" measures the missing ones, after checking every point against the memory
budget — nothing is allocated for a refused setting.
"""
from __future__ import annotations

import os

import panel as pn
import param
import torch

import postlib
from apps import measure
from apps.measure import BATCH, DTYPE, REPEATS, MeasurementRun, Progress, Settings
from apps.results import describe_provenance, plottable_rows, recorded_files, timing_rows
from apps.widgets import (Page, beside, captioned_figure, controls, format_bytes, guarded, memory_budget_bytes,
                          rss_bytes, rule, section, stack)
from postlib import bench
from postlib.viz.scaling import scaling_figure

MODES = {"forward": "forward", "forward + backward": "forward_backward"}
METRICS = {"time (ms)": "time_ms", "peak memory (bytes)": "peak_mem_bytes"}
WIDTHS = [16, 32, 64, 128, 256]
# Lengths are powers of two, 2**4 .. 2**14 on a CPU (2**16 on a GPU): beyond that
# a quadratic mixer takes minutes per point on a laptop.
LOG2_MIN = 4
LOG2_MAX = 16 if torch.cuda.is_available() else 14
# Shown on first load, and measured then if not cached: a few seconds on a laptop CPU, and long
# enough that the work, not Python's per-call overhead, sets the slope.
DEFAULT_LOG2 = (8, 11)
DEFAULT_PARTNERS = ("linear", "s4d", "performer", "mamba")
# CPU threads for a measurement. One by default: on a machine whose cores are busy with other
# work, torch's OpenMP threads wait on each other and a 1 ms matmul can take 100 ms.
THREAD_CHOICES = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= (os.cpu_count() or 1)]


def clear_cache() -> None:
    """Forget every measured point (tests)."""
    measure.POINTS.clear()


def lengths_for(log2_range) -> list[int]:
    lo, hi = (int(v) for v in log2_range)
    if lo > hi:
        lo, hi = hi, lo
    return [2 ** k for k in range(lo, hi + 1)]


PREFERRED_RECORDS = ("cpu_attention_memory.json",)


def default_mixers(names: list[str]) -> list[str]:
    """Softmax beside one cheap sub-quadratic mixer, when registered: the contrast the page is about."""
    picks = [n for n in ("softmax",) if n in names]
    picks += [n for n in DEFAULT_PARTNERS if n in names][:1]
    return picks or names[:1]


class ScalingPage(Page):
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
    running = param.Boolean(default=False, doc="True while a background run measures for this page.")

    def __init__(self, autorun: bool = True, **params):
        names = postlib.list_mixers()
        self.param.mixers.objects = list(names)
        params.setdefault("mixers", default_mixers(names))
        super().__init__(**params)
        self._run: MeasurementRun | None = None
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["scaling-status"])
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, sizing_mode="stretch_width",
                                               bar_color="primary")
        self.skipped = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False)
        self.machine = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        self.figure = captioned_figure(css_classes=["scaling-live"])
        self.recorded_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.recorded_figure = captioned_figure(visible=False, css_classes=["scaling-recorded"])
        self.recorded_table = pn.pane.DataFrame(None, visible=False, sizing_mode="stretch_width", max_rows=60)
        self.run_button = pn.widgets.Button(label="Run", color="primary")
        self.stop_button = pn.widgets.Button(label="Stop", disabled=True)
        self.refresh_button = pn.widgets.Button(label="Refresh list", color="light")
        self.recorded_select = pn.widgets.Select.from_param(self.param.recorded, label="Results file")
        self.run_button.on_click(self._on_run_click)
        self.stop_button.on_click(self._on_stop_click)
        self.refresh_button.on_click(self._on_refresh_click)
        # Guarded even here: a broken results file or figure must show an alert, not hide the page.
        self.refresh_recorded()
        self.redraw()
        self.describe_machine()
        curdoc = pn.state.curdoc
        if curdoc is not None and curdoc.session_context is not None:
            # A reader who leaves mid-run: stop measuring for them and never touch their panes again.
            pn.state.on_session_destroyed(self._on_session_destroyed)
        if autorun and self.missing_points():
            # After the browser has loaded the page (at once outside a server): measuring while the
            # server renders the page would time the rendering too.
            pn.state.onload(self._autorun)

    # ----- settings -> points -------------------------------------------------------------------
    def points(self) -> list[tuple[str, int]]:
        """(mixer, length) pairs the current settings ask for."""
        return [(name, length) for name in self.mixers for length in lengths_for(self.log2_lengths)]

    def settings(self) -> Settings:
        """The settings a measurement depends on (a snapshot: the thread must not see later changes)."""
        return Settings(mode=self.mode, d_model=self.d_model, device=self.device, threads=self.threads)

    def missing_points(self) -> list[tuple[str, int]]:
        return measure.POINTS.missing(self.points(), self.settings())

    def cached_rows(self) -> list[dict]:
        return measure.POINTS.rows(self.points(), self.settings())

    def budget_refusal(self, points: list[tuple[str, int]] | None = None, budget: int | None = None) -> str | None:
        """The refusal message if any point does not fit the memory budget (``apps.measure``), else None."""
        return measure.budget_refusal_for(self.points() if points is None else points, self.settings(), budget)

    # ----- measuring ------------------------------------------------------------------------------
    @guarded
    def _on_run_click(self, _event=None) -> None:
        self.run()

    @guarded
    def _on_stop_click(self, _event=None) -> None:
        self.stop()

    @guarded
    def _on_refresh_click(self, _event=None) -> None:
        self.refresh_recorded()

    @guarded
    def _autorun(self) -> None:
        self.run()

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
        budget = memory_budget_bytes()
        refusal = self.budget_refusal(todo, budget)
        if refusal:
            self.alert.show(refusal, kind="warning")
            return
        self.running = True
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.max, self.progress.value, self.progress.visible = len(todo), 0, True
        self._run = MeasurementRun(todo, self.settings(), self._on_progress, budget=budget)
        self._run.start(background)

    def stop(self) -> None:
        if self._run is not None:
            self._run.stop()
        self.status.object = "Stopping after the current point…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background measurement ends; True when it has."""
        return True if self._run is None else self._run.wait(timeout)

    def _on_progress(self, progress: Progress) -> None:
        if progress.message and not progress.finished:
            self.status.object = progress.message
        self.progress.value = progress.done
        if not progress.finished:
            if not progress.message:
                self.redraw()
            return
        self.running = False
        self.run_button.disabled, self.stop_button.disabled = False, True
        self.progress.visible = False
        if progress.error:
            self.alert.show(f"**Measurement failed:** {progress.error}")
        self.redraw()
        self.status.object = f"{progress.message} {self.status.object}"
        self.describe_machine(progress.released_bytes)

    def _on_session_destroyed(self, session_context) -> None:
        if self._run is not None:
            self._run.detach()

    # ----- drawing --------------------------------------------------------------------------------
    @param.depends("mixers", "log2_lengths", "mode", "metric", "d_model", "device", "threads", watch=True)
    @guarded
    def _on_settings(self) -> None:
        self.alert.clear()
        self.redraw()
        self.describe_machine()

    @guarded
    def redraw(self) -> None:
        rows = self.cached_rows()
        metric_label = next(k for k, v in METRICS.items() if v == self.metric)
        title = f"{metric_label} vs length — {self.mode.replace('_', ' + ')}, d_model {self.d_model}, {self.device}"
        drawable = plottable_rows(rows, self.metric)
        # A curve needs two lengths: a lone point has no slope, and its degenerate log axes froze plotly
        # (the page's main thread) when the phone layout redrew the figure.
        lengths = {}
        for r in drawable:
            lengths.setdefault(r["name"], set()).add(r["length"])
        drawable = [r for r in drawable if len(lengths[r["name"]]) >= 2]
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

    @guarded
    def describe_machine(self, released_bytes: int = 0) -> None:
        """Where the live numbers come from, with the load: on a shared machine, load is noise."""
        prov = bench.provenance(self.device)
        load = prov.get("load_avg_1m_5m_15m")
        memory = f" Server memory: {format_bytes(rss_bytes())} resident"
        memory += f" ({format_bytes(released_bytes)} returned after the last run)." if released_bytes > 0 else "."
        threads = f", {self.threads} of {prov['cpu_count']} CPU threads" if self.device == "cpu" else ""
        self.machine.object = (f"Live numbers from this server: {prov.get('device_name')}, torch {prov.get('torch')}"
                               + threads
                               + (f", load average {load[0]} (1 min)" if load else "")
                               + f"; batch {BATCH}, {str(DTYPE).replace('torch.', '')}, median of {REPEATS} runs. "
                               "Other work on the machine shows up as noise, most at short lengths." + memory)

    # ----- recorded results -----------------------------------------------------------------------
    @guarded
    def refresh_recorded(self) -> None:
        files = recorded_files()
        self.param.recorded.objects = list(files)  # a copy: param may append the default (None) in place
        before = self.recorded
        if self.recorded not in files:
            # The memory wall (two forms, one mode) opens the page; every other file is one choice away.
            preferred = [f for f in PREFERRED_RECORDS if f in files]
            self.recorded = (preferred or files or [None])[0]  # redraws through show_recorded's param.depends
        self.recorded_select.visible = bool(files)  # an empty list would show a lone "None"
        if self.recorded == before:
            self.show_recorded()

    @param.depends("recorded", "metric", watch=True)
    @guarded
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
        settings = stack(
            pn.widgets.MultiChoice.from_param(self.param.mixers, label="Mixers", sizing_mode="stretch_width"),
            lengths,
            pn.widgets.RadioButtonGroup.from_param(self.param.mode, options=MODES, label="Mode"),
            pn.widgets.RadioButtonGroup.from_param(self.param.metric, options=METRICS, label="Metric"),
            controls(pn.widgets.Select.from_param(self.param.d_model, label="d_model"),
                     pn.widgets.Select.from_param(self.param.device, label="Device"),
                     pn.widgets.Select.from_param(self.param.threads, label="CPU threads"), basis_px=90),
            pn.Row(self.run_button, self.stop_button),
            pn.pane.Markdown(f"Memory budget per run: {format_bytes(memory_budget_bytes())}; longer settings "
                             "are refused before anything is allocated.", styles={"font-size": "0.8em"},
                             sizing_mode="stretch_width"))
        live = stack(self.alert.pane, self.status, self.progress, self.figure, self.machine, self.skipped)
        recorded = stack(section("## Recorded results"),
                         controls(self.recorded_select, self.refresh_button, basis_px=160),
                         self.recorded_info, self.recorded_figure, self.recorded_table)
        intro = section(
            "# Scaling with sequence length\nPick mixers and a range of lengths, then **Run**: each point is "
            "measured on this server with `postlib.bench.measure_mixers` and drawn on log-log axes, with the "
            "fitted exponent in the legend (≈1 linear, ≈2 quadratic). Points are cached, so revisiting a "
            "setting is instant.")
        return stack(intro, beside(settings, live), rule(), recorded)


PAGE = {"title": "Scaling", "order": 90, "viewer": ScalingPage}
