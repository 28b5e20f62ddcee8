"""The Scaling page's logic, without a browser: measuring, caching, budget refusal, recorded results.

Measurements are real (``postlib.bench.measure_mixers`` on the CPU) at tiny
lengths; where a test must prove that something was *not* measured, the
benchmark is replaced by a function that fails the test if called.
"""
from __future__ import annotations

import panel as pn
import pytest
import torch

import postlib
from apps import measure
from apps.pages import scaling
from apps.pages.scaling import PAGE, ScalingPage
from postlib import bench
from postlib.viz import get_caption

TINY = (4, 6)  # lengths 16, 32, 64


@pytest.fixture(autouse=True)
def _fresh_cache():
    scaling.clear_cache()
    yield
    scaling.clear_cache()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS_DIR", tmp_path)
    return tmp_path


def _forbid_measuring(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("measure_mixers must not be called here")
    monkeypatch.setattr(bench, "measure_mixers", fail)


def _traces_x(fig) -> list[list[int]]:
    return [list(t.x) for t in fig.data if t.x is not None]


def test_page_contract_and_every_registered_mixer_is_offered():
    assert PAGE["title"] == "Scaling" and PAGE["order"] == 90 and PAGE["viewer"] is ScalingPage
    assert issubclass(ScalingPage, pn.viewable.Viewer)
    page = ScalingPage(autorun=False)
    assert page.param.mixers.objects == postlib.list_mixers()
    assert page.mixers and set(page.mixers) <= set(postlib.list_mixers())
    assert not page.running


def test_layout_renders_to_bokeh_models():
    page = ScalingPage(autorun=False)
    root = pn.panel(page).get_root()
    assert root is not None
    labels = [w.label for w in pn.panel(page).select(pn.widgets.Widget)]
    assert any("Length range" in label for label in labels) and "Run" in labels


def test_lengths_are_powers_of_two_in_either_order():
    assert scaling.lengths_for((4, 6)) == [16, 32, 64]
    assert scaling.lengths_for((6, 4)) == [16, 32, 64]
    assert scaling.lengths_for((5, 5)) == [32]


def test_run_measures_every_point_and_draws_them():
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    assert page.missing_points() == [("softmax", 16), ("softmax", 32), ("softmax", 64)]
    page.run(background=False)
    rows = page.cached_rows()
    assert [r["length"] for r in rows] == [16, 32, 64]
    assert all(r["status"] == "ok" and r["time_ms"] > 0 and r["peak_mem_bytes"] >= 0 for r in rows)
    assert all(r["mode"] == "forward" and r["d_model"] == 64 for r in rows)
    assert page.figure.visible and [16, 32, 64] in _traces_x(page.figure.object)
    assert "~L^" in page.figure.object.data[0].name  # the fitted exponent is in the legend
    assert page.progress.value == page.progress.max == 3
    assert "Measured 3 points" in page.status.object
    assert page.alert.message is None
    assert f"torch {torch.__version__}" in page.machine.object  # where the live numbers come from
    assert "Server memory:" in page.machine.object and "resident" in page.machine.object


def test_background_run_reports_progress_and_finishes():
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY, mode="forward_backward")
    page.run()
    assert page.wait(timeout=120), "the measuring thread did not finish"
    assert not page.running and not page.progress.visible
    assert page.progress.value == 3
    assert not page.run_button.disabled and page.stop_button.disabled
    assert [r["mode"] for r in page.cached_rows()] == ["forward_backward"] * 3


def test_autorun_measures_the_default_settings():
    page = ScalingPage()
    assert page.wait(timeout=120)
    assert len(page.cached_rows()) == len(page.points()) > 0
    assert any(len(x) > 1 for x in _traces_x(page.figure.object))


def test_cached_points_are_reused_across_runs_and_sessions(monkeypatch):
    first = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    first.run(background=False)
    measured = first.cached_rows()
    _forbid_measuring(monkeypatch)
    first.run(background=False)
    assert "already measured (cached)" in first.status.object
    second = ScalingPage(mixers=["softmax"], log2_lengths=TINY)  # autorun finds nothing to do
    assert second._run is None
    assert second.cached_rows() == measured
    assert [16, 32, 64] in _traces_x(second.figure.object)


def test_changing_settings_redraws_from_the_cache_without_measuring(monkeypatch):
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    page.run(background=False)
    _forbid_measuring(monkeypatch)
    page.log2_lengths = (5, 6)
    assert [32, 64] in _traces_x(page.figure.object)
    page.metric = "peak_mem_bytes"
    assert [32, 64] in _traces_x(page.figure.object)
    page.mode = "forward_backward"  # not measured: nothing drawn, and the status says so
    assert page.cached_rows() == [] and not page.figure.visible
    assert "2 of 2 points not measured yet" in page.status.object


def test_setting_over_the_memory_budget_is_refused_before_measuring(monkeypatch):
    monkeypatch.setattr(measure, "memory_budget_bytes", lambda: 2 ** 20)
    monkeypatch.setattr(scaling, "memory_budget_bytes", lambda: 2 ** 20)
    monkeypatch.setattr(bench, "estimate_bytes", lambda module, batch, length, dtype, mode="forward": length ** 2)
    _forbid_measuring(monkeypatch)
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=(10, 10))  # 1024² = exactly the budget
    page.run(background=False)
    assert page.alert.message is not None and page.alert.message.startswith("Refused")
    assert "`softmax` at length 1024" in page.alert.message and "1.0 MiB" in page.alert.message
    assert not page.running and page._run is None and page.cached_rows() == []


def test_an_unknown_estimate_is_refused_visibly(monkeypatch):
    monkeypatch.setattr(bench, "estimate_bytes", lambda module, batch, length, dtype, mode="forward": None)
    _forbid_measuring(monkeypatch)
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    page.run(background=False)
    assert "is unknown" in page.alert.message and page.cached_rows() == []


def test_the_estimate_is_asked_for_the_page_mode(monkeypatch):
    modes = []
    monkeypatch.setattr(bench, "estimate_bytes",
                        lambda module, batch, length, dtype, mode="forward": modes.append(mode) or 1)
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=(10, 10), mode="forward_backward")
    assert page.budget_refusal(budget=2) is None and modes == ["forward_backward"]


def test_a_reader_leaving_mid_run_detaches_the_run(monkeypatch):
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    real = bench.measure_mixers

    def measure_then_leave(*args, **kwargs):
        rows = real(*args, **kwargs)
        page._on_session_destroyed(None)
        return rows
    monkeypatch.setattr(bench, "measure_mixers", measure_then_leave)
    page.run(background=False)
    assert len(page.cached_rows()) == 1  # stopped after the point being measured
    assert page.running  # and never told: its panes belong to a closed session


def test_a_mixer_that_raises_becomes_an_error_row_not_a_dead_page(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("length must be a multiple of 64")
    monkeypatch.setattr(bench, "measure_mixers", broken)
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=(4, 4))
    page.run(background=False)
    (row,) = page.cached_rows()
    assert row["status"].startswith("error: ValueError: length must be a multiple of 64")
    assert page.skipped.visible and "multiple of 64" in page.skipped.object


def test_stop_ends_the_run_between_points(monkeypatch):
    real = bench.measure_mixers
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)

    def measure_then_stop(*args, **kwargs):
        rows = real(*args, **kwargs)
        page.stop()
        return rows
    monkeypatch.setattr(bench, "measure_mixers", measure_then_stop)
    page.run(background=False)
    assert "Stopped after 1 of 3 points" in page.status.object
    assert len(page.cached_rows()) == 1 and not page.running


def test_no_mixer_selected_is_a_visible_warning(monkeypatch):
    _forbid_measuring(monkeypatch)
    page = ScalingPage(autorun=False, mixers=[])
    page.run(background=False)
    assert page.alert.message == "Pick at least one mixer to measure."


def test_a_failing_figure_shows_an_alert_instead_of_raising(monkeypatch):
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=TINY)
    page.run(background=False)

    def broken_figure(*args, **kwargs):
        raise RuntimeError("figure exploded")
    monkeypatch.setattr(scaling, "scaling_figure", broken_figure)
    page.metric = "peak_mem_bytes"  # must not raise
    assert "figure exploded" in page.alert.message


def test_no_recorded_results_says_so_plainly(results_dir):
    page = ScalingPage(autorun=False)
    assert page.recorded is None and not page.recorded_select.visible
    assert page.recorded_info.object.startswith("No recorded results yet")
    assert not page.recorded_figure.visible and not page.recorded_table.visible


def _provenance():
    return {"device_name": "Test GPU 80GB", "device_type": "cuda", "torch": "2.13.0", "triton": "3.9.0",
            "python": "3.11.2", "date": "2026-11-28T12:00:00+00:00"}


def test_recorded_results_are_listed_plotted_and_labelled_with_provenance(results_dir):
    rows = [dict(name="softmax", length=L, batch=1, d_model=64, mode="forward", time_ms=L * L * 1e-6,
                 peak_mem_bytes=L * L * 16, device="cuda", dtype="float32", status="ok") for L in (256, 512, 1024)]
    rows.append(dict(rows[0], length=2048, time_ms=None, peak_mem_bytes=None, status="skipped: out of memory"))
    bench.save_results(rows, results_dir / "gpu_scaling.json", title="softmax on a GPU", provenance=_provenance())
    page = ScalingPage(autorun=False)
    assert page.param.recorded.objects == ["gpu_scaling.json"] and page.recorded == "gpu_scaling.json"
    info = page.recorded_info.object
    assert "Test GPU 80GB" in info and "torch 2.13.0" in info and "2026-11-28" in info
    assert page.recorded_figure.visible
    assert [256, 512, 1024] in _traces_x(page.recorded_figure.object)  # the skipped row is left out
    assert "Test GPU 80GB" in get_caption(page.recorded_figure.object)  # provenance in the figure's caption too


def test_recorded_rows_without_lengths_are_shown_as_a_table(results_dir):
    rows = [dict(kernel="linear_attention", shape="(2, 4, 1000, 64)", rel_rms=1e-4, time_ms=0.5, baseline_ms=2.0)]
    bench.save_results(rows, results_dir / "gpu_check.json", title="kernel checks", provenance=_provenance())
    page = ScalingPage(autorun=False)
    assert page.recorded == "gpu_check.json"
    assert page.recorded_table.visible and not page.recorded_figure.visible  # no length: nothing to plot
    assert list(page.recorded_table.object["kernel"]) == ["linear_attention"]


def test_refresh_picks_up_a_new_results_file(results_dir):
    page = ScalingPage(autorun=False)
    assert page.recorded is None
    rows = [dict(name="softmax", length=L, mode="forward", time_ms=float(L), status="ok") for L in (16, 32)]
    bench.save_results(rows, results_dir / "cpu_new.json", title="new", provenance=_provenance())
    page.refresh_recorded()
    assert page.recorded == "cpu_new.json" and page.recorded_figure.visible


def test_a_corrupt_results_file_shows_an_alert(results_dir):
    (results_dir / "broken.json").write_text("{not json")
    page = ScalingPage(autorun=False)  # must not raise
    assert page.alert.message is not None and "JSONDecodeError" in page.alert.message


def test_measures_with_the_chosen_thread_count_and_restores_it(monkeypatch):
    real, seen = bench.measure_mixers, []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)
    monkeypatch.setattr(bench, "measure_mixers", spy)
    before = torch.get_num_threads()
    page = ScalingPage(autorun=False, mixers=["softmax"], log2_lengths=(4, 5), threads=1)
    page.run(background=False)
    assert seen == [1, 1] and torch.get_num_threads() == before
    assert "1 of" in page.machine.object and "CPU threads" in page.machine.object
    if len(scaling.THREAD_CHOICES) > 1:  # another thread count is another measurement, not a cache hit
        page.threads = scaling.THREAD_CHOICES[1]
        assert page.cached_rows() == [] and len(page.missing_points()) == 2


def test_recorded_gpu_check_timings_plot_as_curves_beside_a_table_of_checks(results_dir):
    rows = [dict(kernel="linear_attention", check="forward vs torch prefix-sum (fp64)", length=63, rel_rms=1e-9,
                 ok=True)]
    rows += [dict(kernel="linear_attention", check="timing causal float16", length=L, triton_ms=L / 1000,
                  sdpa_causal_ms=(L / 1000) ** 2, speedup_vs_sdpa=L / 1000) for L in (1024, 2048, 4096)]
    bench.save_results(rows, results_dir / "gpu_check.json", title="gpu check", provenance=_provenance())
    page = ScalingPage(autorun=False)
    names = [t.name for t in page.recorded_figure.object.data]
    assert page.recorded_figure.visible and len(names) == 2
    assert any(n.startswith("linear_attention · triton") and "~L^1.00" in n for n in names)
    assert any(n.startswith("linear_attention · sdpa_causal") and "~L^2.00" in n for n in names)
    assert page.recorded_table.visible and len(page.recorded_table.object) == 4  # every check, as a table
    page.metric = "peak_mem_bytes"  # no memory in this file: said plainly, the table stays
    assert not page.recorded_figure.visible and "no `peak_mem_bytes` per length" in page.recorded_info.object
