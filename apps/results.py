"""Recorded benchmark results for dashboard pages: list them, describe their provenance, plot their rows.

Files live in ``postlib.bench.RESULTS_DIR`` (``load_results`` reads them). Two
row shapes occur: scaling rows from ``postlib.bench`` (``name``, ``length``,
``time_ms``, ``peak_mem_bytes``, ``status``) and ``make gpu-check`` rows
(``kernel``, ``check``, ``length``, one ``<implementation>_ms`` per timed form);
:func:`timing_rows` turns the second into the first so both plot with
``postlib.viz.scaling.scaling_figure``.
"""
from __future__ import annotations

from pathlib import Path

from postlib import bench


def recorded_files(results_dir: Path | None = None) -> list[str]:
    """Names of the recorded results files (``*.json``) in ``postlib.bench.RESULTS_DIR``."""
    folder = Path(results_dir or bench.RESULTS_DIR)
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def describe_provenance(doc: dict) -> str:
    """One Markdown paragraph: what was measured, on what, with which versions, when."""
    prov = doc.get("provenance") or {}
    device = prov.get("device_name") or prov.get("device_type") or "unknown device"
    parts = [f"**{doc.get('title', 'untitled')}** — {device}"]
    versions = ", ".join(f"{k} {prov[k]}" for k in ("torch", "triton", "cuda", "python") if prov.get(k))
    if versions:
        parts.append(versions)
    if prov.get("date"):
        parts.append(f"recorded {prov['date']}")
    text = "; ".join(parts) + "."
    if doc.get("notes"):
        text += f"\n\n{doc['notes']}"
    return text


def plottable_rows(rows: list[dict], metric: str) -> list[dict]:
    """Rows the scaling figure can draw: measured (status ok), with a name, a length and the metric."""
    out = []
    for r in rows:
        if not isinstance(r, dict) or str(r.get("status", "ok")) != "ok":
            continue
        value = r.get(metric)
        if r.get("name") is None or r.get("length") is None or not isinstance(value, (int, float)) or value <= 0:
            continue
        out.append(r)
    return out


def timing_rows(rows: list[dict]) -> list[dict]:
    """``make gpu-check`` rows (``kernel``, ``length``, one ``<implementation>_ms`` per timed form)
    as scaling rows, one series per kernel and implementation, so recorded GPU timings plot as curves."""
    out = []
    for r in rows:
        if r.get("name") is not None or r.get("kernel") is None or r.get("length") is None:
            continue
        for key, value in r.items():
            if key.endswith("_ms") and isinstance(value, (int, float)) and value > 0:
                out.append(dict(name=f"{r['kernel']} · {key[:-3]}", length=int(r["length"]),
                                mode=str(r.get("check", "")), time_ms=float(value), status="ok"))
    return out
