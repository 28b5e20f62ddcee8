"""save_results / load_results round trip, and the CLI end to end."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from postlib.bench import load_results, save_results

ROOT = Path(__file__).resolve().parents[2]
ROWS = [dict(name="a", length=8, batch=1, d_model=4, mode="forward", time_ms=1.5, peak_mem_bytes=100,
             device="cpu", dtype="float32", status="ok"),
        dict(name="a", length=16, batch=1, d_model=4, mode="forward", time_ms=None, peak_mem_bytes=None,
             device="cpu", dtype="float32", status="skipped: out of memory")]


def test_round_trip_json_and_csv(tmp_path):
    path = save_results(ROWS, tmp_path / "run", title="t", notes="n", extra={"fits": {"a": {"time_ms": 2.0}}})
    assert path.suffix == ".json"
    doc = load_results(path)
    assert doc["rows"] == ROWS and doc["title"] == "t" and doc["notes"] == "n"
    assert doc["provenance"]["device_type"] == "cpu" and doc["fits"]["a"]["time_ms"] == 2.0
    with path.with_suffix(".csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["length"] for r in table] == ["8", "16"] and table[1]["time_ms"] == ""


def test_save_and_load_errors(tmp_path):
    with pytest.raises(ValueError, match="title"):
        save_results(ROWS, tmp_path / "x.json", title="")
    with pytest.raises(TypeError, match="rows must be a list of dicts"):
        save_results("rows", tmp_path / "x.json", title="t")
    with pytest.raises(FileNotFoundError, match="no results file"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="lacks"):
        load_results(tmp_path / "bad.json")


def _cli(experiment, *args):
    return subprocess.run([sys.executable, "-m", "postlib.bench", experiment, "--quiet", "--repeats", "1", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_mixers_smoke(tmp_path):
    out = tmp_path / "mixers.json"
    proc = _cli("mixers", "--mixers", "softmax", "--lengths", "4,9", "--d-model", "8", "--modes", "forward", "--out", str(out),
                "--config", '{"softmax": {"n_heads": 2}}', "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    doc = load_results(out)
    assert [r["length"] for r in doc["rows"]] == [4, 9] and out.with_suffix(".csv").exists()
    assert doc["provenance"]["torch_threads"] == 1
    assert "softmax" in proc.stdout


def test_cli_memory_wall_smoke(tmp_path):
    out = tmp_path / "wall.json"
    proc = _cli("memory-wall", "--lengths", "32,64", "--head-dim", "8", "--block-size", "16", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = load_results(out)
    assert {r["name"] for r in doc["rows"]} == {"softmax_attention", "flash_attention (torch)"}
    assert "peak_mem_bytes" in doc["fits"]["softmax_attention"]


def test_cli_rejects_bad_lengths():
    proc = _cli("mixers", "--lengths", "4,x")
    assert proc.returncode == 2 and "comma-separated integers" in proc.stderr
