"""Recorded results: one JSON file ``{title, notes, provenance, rows}`` plus a sibling CSV.

The JSON is what chapters and the dashboard load (``load_results``); the CSV
holds the same rows for a spreadsheet. Recorded files are committed in
``RESULTS_DIR`` so that every number a chapter prints has a file, a device,
library versions and a date behind it.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from .core import provenance as _provenance
from .measure import ROW_KEYS

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save_results(rows: list[dict], path, *, title: str, notes: str = "", provenance: dict | None = None,
                 extra: dict | None = None) -> Path:
    """Write ``rows`` to ``path`` (``.json`` added if missing) and a sibling ``.csv``; return the JSON path.

    ``provenance`` defaults to ``postlib.bench.provenance`` for the device of the
    first row. ``extra`` adds further top-level keys (for example fitted exponents).
    """
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError("rows must be a list of dicts (as returned by measure_mixers / measure_functions)")
    if not isinstance(title, str) or not title:
        raise ValueError("title must be a non-empty string describing the measurement")
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    if provenance is None:
        provenance = _provenance(rows[0].get("device", "cpu") if rows else "cpu")
    doc = {"title": title, "notes": notes, "provenance": provenance, "rows": rows}
    reserved = set(doc) & set(extra or {})
    if reserved:
        raise ValueError(f"extra must not redefine {sorted(reserved)}")
    doc.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    keys = list(ROW_KEYS) + sorted({k for r in rows for k in r} - set(ROW_KEYS))
    with path.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in keys})
    return path


def load_results(path) -> dict:
    """Read a results JSON written by ``save_results``; a bare file name is looked up in ``RESULTS_DIR``."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    if not path.exists() and not path.is_absolute() and (RESULTS_DIR / path.name).exists():
        path = RESULTS_DIR / path.name
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path} (recorded results live in {RESULTS_DIR})")
    doc = json.loads(path.read_text(encoding="utf-8"))
    missing = {"title", "provenance", "rows"} - set(doc)
    if missing:
        raise ValueError(f"{path} is not a results file: it lacks {sorted(missing)}")
    return doc
