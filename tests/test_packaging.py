"""Set-up stays honest: environment.yml lists what pyproject.toml does, the
Makefile pins a CPU torch for local installs, and .ci/run is runnable."""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("book", "apps", "gpu"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert {(_name(r), r.replace(" ", "")) for r in wanted} == {(_name(r), r.replace(" ", "")) for r in listed}


def test_package_requirement_on_torch_is_loose_and_makefile_pins_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = next(r for r in project["dependencies"] if _name(r) == "torch")
    assert "==" not in torch_req, "keep torch loose in the package so Colab keeps its own torch"
    assert re.search(r"TORCH_PIN \?= torch==\d", (ROOT / "Makefile").read_text())


def test_readme_quickstart_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme


def test_ci_script_is_executable_and_runs_make_test():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert "chromium" in text and "make test" in text
