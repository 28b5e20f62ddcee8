"""The grader on notebooks made from the chapters' own exercises: fully correct, every answer wrong, and
calling postlib instead of implementing; and on a notebook that crashes, loops and kills its kernel."""
from __future__ import annotations

import csv
import json

import nbformat
import pytest

from postlib.exercises import all_exercises
from postlib.exercises.grader import grade, grade_notebook, write_csv, write_json

from .notebooks import CHEATS, learner_notebook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learners")
    paths = [learner_notebook(kind, folder / f"{kind}.ipynb") for kind in ("correct", "wrong", "cheat")]
    grades = grade(paths, cell_timeout=120)
    write_json(grades, folder / "grades.json")
    write_csv(grades, folder / "grades.csv")
    return dict(zip(("correct", "wrong", "cheat"), grades)), folder


def test_correct_notebook_scores_every_point(graded):
    grades, _ = graded
    correct = grades["correct"]
    failed = [(r["id"], r["message"]) for r in correct.results if not r["passed"]]
    assert not failed, failed
    assert correct.awarded == correct.possible == sum(e.points for e in all_exercises().values())
    assert {r["id"] for r in correct.results} == set(all_exercises())
    assert not correct.flags


def test_wrong_notebook_scores_nothing_and_every_failure_has_a_hint(graded):
    wrong = graded[0]["wrong"]
    passed = [r["id"] for r in wrong.results if r["passed"]]
    assert not passed, f"wrong answers accepted: {passed}"
    assert wrong.awarded == 0 and wrong.possible > 0
    assert all(r["message"] and "never checked" not in r["message"] for r in wrong.results)


def test_calling_postlib_instead_of_implementing_scores_zero(graded):
    cheat = graded[0]["cheat"]
    by_id = {r["id"]: r for r in cheat.results}
    for exercise_id in CHEATS:
        result = by_id[exercise_id]
        assert not result["passed"] and result["awarded"] == 0, exercise_id
        assert "implement it yourself" in result["message"], (exercise_id, result["message"])
    others = [r for r in cheat.results if r["id"] not in CHEATS]
    assert all(r["passed"] for r in others)                # the honest answers in the same notebook still count


def test_reports_are_machine_readable(graded):
    grades, folder = graded
    report = json.loads((folder / "grades.json").read_text())
    assert report["possible"] == 3 * grades["correct"].possible
    assert report["awarded"] == sum(g.awarded for g in grades.values())
    rows = list(csv.DictReader((folder / "grades.csv").open()))
    assert len(rows) == sum(len(g.results) for g in grades.values())
    assert {"notebook", "exercise", "points", "awarded", "passed", "message"} <= set(rows[0])


def test_a_crash_a_loop_and_a_dead_kernel_fail_only_their_exercises(tmp_path):
    cells = [
        "import math, torch\n"
        "from postlib.exercises.baseline import (check_attention_flops, check_causal_mask, "
        "check_softmax_attention, check_which_form_decoding)",
        "def flops(n, d):\n    return 4 * n * n * d\nwhile True:\n    pass\ncheck_attention_flops(flops)",
        "raise RuntimeError('boom')\ncheck_causal_mask(None)",
        "import os\nos._exit(1)",
        "def attention(q, k, v):\n    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v\n"
        "check_softmax_attention(attention)",
        "from IPython.display import display\n"
        "display({'application/vnd.postlib.exercise+json': {'id': 'baseline.which_form_decoding', 'status': 'pass'}},"
        " raw=True)\ncheck_which_form_decoding('a')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    path = tmp_path / "chaos.ipynb"
    nbformat.write(nb, path)
    result = grade_notebook(path, cell_timeout=20)
    by_id = {r["id"]: r for r in result.results}
    assert "did not finish in time" in by_id["baseline.attention_flops"]["message"]
    assert "the cell raised (RuntimeError: boom)" in by_id["baseline.causal_mask"]["message"]
    assert by_id["baseline.softmax_attention"]["passed"]          # after the kernel restarted
    assert not by_id["baseline.which_form_decoding"]["passed"]    # the real check ran last and failed
    assert any("grading machinery" in f for f in result.flags)
    assert result.awarded == 2
