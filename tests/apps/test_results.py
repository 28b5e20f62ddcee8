"""Recorded-results helpers: listing, provenance text, and which rows can be plotted."""
from __future__ import annotations

from apps.results import describe_provenance, plottable_rows, recorded_files, timing_rows


def test_recorded_files_lists_only_json_sorted(tmp_path):
    for name in ("b.json", "a.json", "a.csv", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert recorded_files(tmp_path) == ["a.json", "b.json"]
    assert recorded_files(tmp_path / "missing") == []


def test_describe_provenance_names_device_versions_date_and_notes():
    doc = {"title": "T", "notes": "shared CPU", "provenance": {"device_name": "H100", "torch": "2.13.0",
                                                               "cuda": "12.8", "date": "2026-11-28T10:00:00+00:00"}}
    text = describe_provenance(doc)
    assert text.startswith("**T** — H100; torch 2.13.0, cuda 12.8; recorded 2026-11-28T10:00:00+00:00.")
    assert text.endswith("\n\nshared CPU")
    assert "unknown device" in describe_provenance({"title": "T", "provenance": {}})


def test_plottable_rows_need_ok_status_a_name_a_length_and_a_positive_metric():
    good = dict(name="softmax", length=16, time_ms=1.0, status="ok")
    rows = [good, dict(good, status="skipped: out of memory"), dict(good, time_ms=None), dict(good, time_ms=0.0),
            dict(good, name=None), dict(good, length=None), "not a row"]
    assert plottable_rows(rows, "time_ms") == [good]
    assert plottable_rows(rows, "peak_mem_bytes") == []


def test_timing_rows_turn_each_implementation_into_a_series():
    rows = [dict(kernel="flash_fwd", check="timing", length=1024, triton_ms=2.0, sdpa_ms=3.0, speedup=1.5),
            dict(kernel="flash_fwd", check="correctness", length=63, rel_rms=1e-9),
            dict(name="softmax", length=16, time_ms=1.0),  # already a scaling row: left alone
            dict(kernel="flash_fwd", check="timing", triton_ms=1.0)]  # no length: cannot be a point
    out = timing_rows(rows)
    assert out == [dict(name="flash_fwd · triton", length=1024, mode="timing", time_ms=2.0, status="ok"),
                   dict(name="flash_fwd · sdpa", length=1024, mode="timing", time_ms=3.0, status="ok")]
