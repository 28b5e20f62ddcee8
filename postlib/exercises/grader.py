"""Grade completed notebooks headless: per exercise pass/fail, hint and points; a total; JSON and CSV.

    python -m postlib.exercises grade alice.ipynb bob.ipynb --json grades.json --csv grades.csv

Each notebook runs top to bottom in a fresh kernel (nbclient), one cell at a time, with a time limit per
cell. A cell that raises is recorded and the run goes on; a cell past its limit is interrupted; a cell
that kills the kernel (``os._exit``, a segfault) is skipped: the kernel restarts and the cells before it
run again. So a crashing or endless cell fails only the exercises it holds, never the grader.

The results are the records the checkers emit (MIME type ``RESULT_MIME``): the last one per exercise
counts. The exercises a notebook should answer come from its metadata (``postlib.exercises``, written
into every student notebook) and from the checker calls in its cells; one never checked scores 0 with
the reason (the cell raised, timed out, or the call is missing). Code that touches the grading
machinery (the result MIME type, the guard, ``__code__``) is flagged for a human to read.
"""
from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .core import RESULT_MIME, all_exercises
from .editions import exercise_calls, is_solution

__all__ = ["grade_notebook", "grade", "write_json", "write_csv", "format_report", "SUSPICIOUS"]

SUSPICIOUS = re.compile(r"vnd\.postlib|RESULT_MIME|__code__|exercises\.(guard|core)|_ACTIVE|\.violations|"
                        r"run_checker|report\(|Prediction\b|\.predicted\b|\.revealed\b")
MAX_RESTARTS = 3


@dataclass
class CellRun:
    index: int
    status: str = "ok"          # ok | error | timeout | killed
    error: str = ""
    seconds: float = 0.0


@dataclass
class NotebookGrade:
    notebook: str
    results: list[dict] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cells: list[dict] = field(default_factory=list)       # cells that raised, timed out or killed the kernel

    @property
    def awarded(self) -> int:
        return sum(r["awarded"] for r in self.results)

    @property
    def possible(self) -> int:
        return sum(r["points"] for r in self.results)

    def as_dict(self) -> dict:
        return {"notebook": self.notebook, "awarded": self.awarded, "possible": self.possible,
                "seconds": round(self.seconds, 1), "flags": self.flags, "failed_cells": self.cells,
                "exercises": self.results}


def _records(cell) -> list[dict]:
    return [out["data"][RESULT_MIME] for out in cell.get("outputs", [])
            if out.get("output_type") in ("display_data", "execute_result") and RESULT_MIME in out.get("data", {})]


def _error_text(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"[:300]
    return ""


def _execute(nb, cell_timeout: float, kernel_name: str, cwd: str) -> list[CellRun]:
    """Run every code cell; never raises for what the notebook does."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    runs = {i: CellRun(i) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    order = sorted(runs)
    position = restarts = 0
    while position < len(order):
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name=kernel_name, allow_errors=True,
                                interrupt_on_timeout=True, resources={"metadata": {"path": cwd}},
                                error_on_timeout={"ename": "CellTimeout",
                                                  "evalue": f"the cell did not finish within {cell_timeout:g} s",
                                                  "traceback": []})
        try:
            with client.setup_kernel():
                for earlier in order[:position]:          # after a restart: rebuild the state later cells need
                    if runs[earlier].status == "ok":
                        client.execute_cell(nb.cells[earlier], earlier)
                while position < len(order):
                    index = order[position]
                    position += 1
                    began = time.perf_counter()
                    try:
                        client.execute_cell(nb.cells[index], index)
                    except DeadKernelError as died:
                        runs[index].status, runs[index].error = "killed", f"the kernel died: {died}"[:300]
                        break
                    error = _error_text(nb.cells[index])
                    runs[index].seconds = time.perf_counter() - began
                    if runs[index].seconds >= cell_timeout:       # interrupted: KeyboardInterrupt
                        runs[index].status = "timeout"
                        runs[index].error = f"stopped after {cell_timeout:g} s"
                    elif error:
                        runs[index].status, runs[index].error = "error", error
        except Exception as broken:        # the kernel died while starting or replaying: try again, a few times
            if position < len(order):
                runs[order[position]].error = runs[order[position]].error or f"{broken}"[:300]
        restarts += 1
        if position < len(order) and restarts > MAX_RESTARTS:
            for later in order[position:]:
                runs[later].status, runs[later].error = "killed", "not run: the kernel kept dying"
            break
    return list(runs.values())


def _expected(nb, registry) -> list[str]:
    meta = nb.metadata.get("postlib", {}).get("exercises", [])
    ids = [i for i in meta if i in registry]
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_solution(cell):
            ids += [i for i in exercise_calls(cell.source, registry) if i not in ids]
    return ids


def grade_notebook(path, cell_timeout: float = 300.0, kernel_name: str = "python3") -> NotebookGrade:
    """Execute one notebook and score it (see the module docstring)."""
    import nbformat
    path = Path(path)
    registry = all_exercises()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None      # grade what runs now, not what was saved
    grade = NotebookGrade(str(path))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and SUSPICIOUS.search(cell.source):
            grade.flags.append(f"cell {i} touches the grading machinery ({SUSPICIOUS.search(cell.source).group(0)}): "
                               "read it before trusting the score")
    start = time.perf_counter()
    runs = {r.index: r for r in _execute(nb, cell_timeout, kernel_name, str(path.parent.resolve()))}
    grade.seconds = time.perf_counter() - start
    grade.cells = [{"cell": r.index, "status": r.status, "error": r.error, "seconds": round(r.seconds, 1)}
                   for r in sorted(runs.values(), key=lambda r: r.index) if r.status != "ok"]
    latest: dict[str, dict] = {}
    where: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for exercise_id in exercise_calls(cell.source, registry):
            where.setdefault(exercise_id, i)
        for record in _records(cell):
            if record.get("id") in registry:
                latest[record["id"]] = record
    for exercise_id in _expected(nb, registry):
        ex = registry[exercise_id]
        base = {"id": ex.id, "title": ex.title, "kind": ex.kind, "difficulty": ex.stars, "minutes": ex.minutes,
                "points": ex.points}
        record = latest.get(exercise_id)
        if record is not None and record.get("status") == "pass":
            result = {**base, "passed": True, "awarded": ex.points, "message": record.get("message", "")}
        else:
            run = runs.get(where.get(exercise_id, -1))
            if run is not None and run.status != "ok":
                message = {"timeout": "the cell did not finish in time", "killed": "the cell killed the kernel",
                           "error": "the cell raised"}[run.status] + f" ({run.error})"
            elif record is not None:
                message = record.get("message", "")
            elif run is None:
                message = "never checked: the cell that calls the checker is missing"
            else:
                message = "never checked"
            result = {**base, "passed": False, "awarded": 0, "message": message}
        grade.results.append(result)
    return grade


def grade(paths, cell_timeout: float = 300.0, kernel_name: str = "python3", jobs: int = 1) -> list[NotebookGrade]:
    """Grade each notebook (``jobs`` at a time, each in its own kernel); results in the order given."""
    run = lambda p: grade_notebook(p, cell_timeout=cell_timeout, kernel_name=kernel_name)  # noqa: E731
    if jobs <= 1:
        return [run(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(run, paths))


def format_report(grades: list[NotebookGrade]) -> str:
    lines = []
    for g in grades:
        lines.append(f"{g.notebook}: {g.awarded} / {g.possible} points ({g.seconds:.0f} s)")
        for r in g.results:
            mark = "✅" if r["passed"] else "❌"
            lines.append(f"  {mark} {r['id']:<40} {r['awarded']}/{r['points']}  {r['difficulty']:<3} "
                         f"{r['message'] if not r['passed'] else ''}".rstrip())
        lines += [f"  ⚠ {flag}" for flag in g.flags]
        lines += [f"  · cell {c['cell']}: {c['status']} ({c['error']})" for c in g.cells]
    if len(grades) > 1:
        lines.append(f"total: {sum(g.awarded for g in grades)} / {sum(g.possible for g in grades)} points")
    return "\n".join(lines)


def write_json(grades: list[NotebookGrade], path) -> None:
    Path(path).write_text(json.dumps({"notebooks": [g.as_dict() for g in grades],
                                      "awarded": sum(g.awarded for g in grades),
                                      "possible": sum(g.possible for g in grades)}, indent=2, ensure_ascii=False))


def write_csv(grades: list[NotebookGrade], path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["notebook", "exercise", "title", "kind", "difficulty", "minutes", "points", "awarded",
                         "passed", "message"])
        for g in grades:
            for r in g.results:
                writer.writerow([g.notebook, r["id"], r["title"], r["kind"], r["difficulty"], r["minutes"],
                                 r["points"], r["awarded"], r["passed"], r["message"]])
