"""Every recorded experiment is reachable from ``python -m postlib.bench`` and declares the interface."""
import argparse
import subprocess
import sys
from pathlib import Path

from postlib.bench.__main__ import build_parser
from postlib.bench.experiments import experiments

ROOT = Path(__file__).resolve().parents[2]


def test_every_experiment_declares_the_interface():
    found = experiments()
    assert {"mixers", "memory-wall"} <= set(found)
    for command, module in found.items():
        assert isinstance(module.SUMMARY, str) and module.SUMMARY, command
        assert module.RESULT.endswith(".json"), command
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)  # must not raise, and must not clash with the CLI's own options
        assert not {"--out", "--notes", "--quiet", "--threads"} & set(parser._option_string_actions), command


def test_help_lists_every_experiment():
    proc = subprocess.run([sys.executable, "-m", "postlib.bench", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in experiments():
        assert command in proc.stdout


def test_unknown_experiment_is_refused():
    parser = build_parser()
    try:
        parser.parse_args(["not-an-experiment"])
    except SystemExit as exit_:
        assert exit_.code == 2
    else:  # pragma: no cover
        raise AssertionError("an unknown experiment must be refused")
