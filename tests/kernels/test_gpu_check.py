"""The gpu-check script works end to end (smoke mode: Triton interpreter on CPU)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from postlib.kernels.gpu_check import kernel_modules

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, extra_path=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), extra_path) if p))
    env.pop("TRITON_INTERPRET", None)  # the script must set it itself in smoke mode
    return subprocess.run([sys.executable, "-m", "postlib.kernels.gpu_check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_kernel_modules_are_discovered():
    found = kernel_modules()
    assert {"postlib.kernels.flash_fwd", "postlib.kernels.selective_scan", "postlib.kernels.linear_attention"} <= set(found)
    assert "postlib.kernels.gpu_check" not in found


def test_smoke_run_checks_flash(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = _run("--smoke", "--out", str(out), "--modules", "postlib.kernels.flash_fwd")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["modules"]["postlib.kernels.flash_fwd"].startswith("ok")
    checks = [r for r in doc["rows"] if "rel_rms" in r]
    assert checks and all(r["ok"] for r in checks)
    assert {r["causal"] for r in checks} == {False, True} and {"float32", "float16"} <= {r["dtype"] for r in checks}
    timings = [r for r in doc["rows"] if "speedup_vs_sdpa" in r]
    assert timings and all(r["triton_ms"] > 0 and r["sdpa_ms"] > 0 for r in timings)
    assert doc["provenance"]["device_type"] == "cpu" and doc["failed_checks"] == 0
    assert "speedup_vs_sdpa" in proc.stdout  # the summary table


def test_a_module_that_does_not_import_is_a_failed_check(tmp_path):
    """Kernels are discovered, so a name that does not import is a mistake, never a silent skip."""
    from postlib.kernels.gpu_check import run_module

    status, rows = run_module("postlib.kernels.not_written", "cpu", quick=True)
    assert status.startswith("error: import failed") and rows[0]["ok"] is False


def test_failed_check_and_crashing_module_exit_nonzero(tmp_path):
    pkg = tmp_path / "fake_kernels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("def gpu_check(device, quick):\n    return [dict(check='x', rel_rms=1.0, ok=False)]\n")
    (pkg / "boom.py").write_text("def gpu_check(device, quick):\n    raise RuntimeError('kaboom')\n")
    out = tmp_path / "g.json"
    proc = _run("--smoke", "--out", str(out), "--modules", "fake_kernels.bad,fake_kernels.boom",
                extra_path=str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["failed_checks"] == 2
    assert doc["modules"]["fake_kernels.boom"].startswith("error: RuntimeError: kaboom")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_it_says_so_and_exits_2(tmp_path):
    proc = _run("--out", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and not (tmp_path / "x.json").exists()
