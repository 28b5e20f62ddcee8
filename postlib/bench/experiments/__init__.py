"""Recorded experiments: one module each, reachable as ``python -m postlib.bench <name>``.

This package is the one home of every measurement whose numbers the book prints.
A module ``postlib/bench/experiments/<name>.py`` (the command is ``<name>`` with
``-`` for ``_``) defines:

``SUMMARY: str``
    One line, shown by ``python -m postlib.bench --help``.
``RESULT: str``
    The default file name of its record in ``RESULTS_DIR``, e.g. ``"cpu_wkv.json"``.
``add_arguments(parser) -> None``
    Its own options (lengths, threads, ...). ``--out``, ``--notes`` and ``--quiet``
    are added by the CLI for every experiment.
``record(args) -> dict``
    Runs the measurement and returns the document to save:
    ``{"title": str, "rows": list[dict], "notes": str (optional), **extra}``.
    The CLI adds the provenance (device, versions, date, threads, load) and
    writes the JSON and its CSV with ``postlib.bench.save_results``.
    Timing goes through ``postlib.bench.time_fn`` (or ``measure_functions`` /
    ``measure_mixers``, which use it), memory through ``postlib.bench.peak_memory``.
``THREADS: int`` (optional)
    The default of ``--threads`` for this experiment (else torch's default).

What a chapter needs to run an experiment live at a small size (its factories or
its sweep function) is imported from the experiment module itself, so the live
run and the record are the same code.

Modules are found by :func:`experiments`, so a new experiment needs no edit
anywhere else; ``tests/bench/test_experiments.py`` checks that each one
declares the interface and that every recorded file has its experiment.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

REQUIRED = ("SUMMARY", "RESULT", "add_arguments", "record")


def command_name(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1].replace("_", "-")


def experiments() -> dict[str, ModuleType]:
    """``{command: module}`` for every experiment module in this package, sorted by command."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
        if missing:
            raise TypeError(f"experiment module {module.__name__} lacks {missing} (see postlib.bench.experiments)")
        found[command_name(module.__name__)] = module
    return dict(sorted(found.items()))
