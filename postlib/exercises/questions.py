"""Conceptual questions: a number to compute by hand, a multiple choice, a prediction made before a run.

None of them stores its answer in plain text: a number is computed by a formula in the checker
module, a choice is stored as :func:`answer_hash` of the question id and the option (get it with
``python -m postlib.exercises hash <id> <option>``). Each registers an :class:`~postlib.exercises.core.Exercise`
with marks, like a function exercise, and reports through the same line the grader collects.

    # in postlib/exercises/<chapter>.py
    @number_question(points=1, difficulty=1, minutes=5, title="KV-cache memory", rel_tol=0.02,
                     near={0.5: "count both K and V"})
    def check_kv_cache_gib():
        return 2 * layers * length * d_model * 2 / 2**30          # the formula; the learner gives a number

    check_which_form = choice_question("check_which_form", options="abc", answer="5d41402abc4b2a76",
                                       points=1, difficulty=1, minutes=3, title="which form when",
                                       hints={"a": "...", "c": "..."})

    predict_flash_error = prediction("predict_flash_error", options="abc", answer="…", observe=to_option,
                                     points=1, difficulty=2, minutes=3, title="exact or approximate?")

In the chapter: ``check_kv_cache_gib(answer)``, ``check_which_form("b")``; a prediction is two cells,
``predict_flash_error("a")`` (recorded, nothing revealed) and, after the experiment,
``predict_flash_error.reveal(measurement)``, which shows the run, grades the recorded prediction, and
raises if the run contradicts the stored answer (so the book build proves the answer key measured).
"""
from __future__ import annotations

import hashlib
import math
import sys
from numbers import Real

from .core import Exercise, register, report, _module_tag

__all__ = ["answer_hash", "number_question", "choice_question", "prediction"]


def _normalise(option) -> str:
    return str(option).strip().strip("()").strip().lower()


def answer_hash(question_id: str, option) -> str:
    """The stored form of a choice answer: not readable, but checkable."""
    return hashlib.sha256(f"{question_id}|{_normalise(option)}".encode()).hexdigest()[:16]


def _unanswered(answer) -> bool:
    return answer is Ellipsis or answer is None


def number_question(*, points: int, difficulty: int, minutes: int, title: str, rel_tol: float = 0.01,
                    abs_tol: float = 0.0, near: dict | None = None, id: str | None = None):
    """Register "compute this number by hand". Decorate a function with no arguments that returns the
    right number from its formula; ``near`` maps a ratio (given / right) to a hint for a classic slip."""
    def wrap(formula):
        name = formula.__name__
        ex = register(Exercise(id=id or f"{_module_tag(formula.__module__)}.{name.removeprefix('check_')}",
                               name=name, title=title, points=points, difficulty=difficulty, minutes=minutes,
                               kind="number", module=formula.__module__))

        def checker(answer) -> bool:
            if _unanswered(answer):
                return report(ex, title, "todo", "not answered yet — replace the `...` with your number.")
            if isinstance(answer, bool) or not isinstance(answer, Real):
                return report(ex, title, "fail", f"give a number, got {type(answer).__name__}.")
            right = float(formula())
            given = float(answer)
            if math.isclose(given, right, rel_tol=rel_tol, abs_tol=abs_tol):
                return report(ex, title, "pass", "correct!")
            ratio = given / right if right else math.inf
            for factor, hint in (near or {}).items():
                if math.isclose(ratio, factor, rel_tol=rel_tol):
                    return report(ex, title, "fail", hint)
            direction = "too large" if given > right else "too small"
            return report(ex, title, "fail", f"{direction} (by more than {rel_tol:.0%}): redo the count step by "
                                             "step, with the units.")

        checker.__name__ = checker.__qualname__ = name
        checker.__doc__ = formula.__doc__
        checker.__module__ = formula.__module__
        checker.exercise = ex
        return checker
    return wrap


def _caller_module(depth: int = 2) -> str:
    return sys._getframe(depth).f_globals.get("__name__", "?")


class _Choice:
    def __init__(self, ex: Exercise, options: str, answer: str, hints: dict | None):
        self.exercise, self.options, self.answer, self.hints = ex, options, answer, hints or {}
        if len(answer) != 16 or not all(c in "0123456789abcdef" for c in answer):
            raise ValueError(f"answer of {ex.id} must be answer_hash(id, option), 16 hex digits")
        if not any(answer_hash(ex.id, o) == answer for o in options):
            raise ValueError(f"answer of {ex.id} matches none of the options {options!r}: recompute it with "
                             f"`python -m postlib.exercises hash {ex.id} <option>`")

    def is_right(self, option) -> bool:
        return answer_hash(self.exercise.id, option) == self.answer

    def invalid(self, option) -> str | None:
        if _unanswered(option):
            return None
        if _normalise(option) not in self.options:
            return f"answer with one of {', '.join(self.options)} (a string such as \"{self.options[0]}\")."
        return None


def choice_question(name: str, *, options: str, answer: str, points: int, difficulty: int, minutes: int,
                    title: str, hints: dict | None = None, id: str | None = None):
    """Register a multiple choice; returns the checker ``name(option) -> bool``. ``options`` are the
    letters the chapter lists; ``answer`` is :func:`answer_hash` of the right one; ``hints`` maps a
    wrong letter to what to reconsider."""
    module = _caller_module()
    ex = Exercise(id=id or f"{_module_tag(module)}.{name.removeprefix('check_')}", name=name, title=title,
                  points=points, difficulty=difficulty, minutes=minutes, kind="choice", module=module)
    choice = _Choice(ex, options, answer, hints)          # validates the stored answer before registering
    register(ex)

    def checker(option) -> bool:
        if _unanswered(option):
            return report(ex, title, "todo", "not answered yet — replace the `...` with your choice.")
        bad = choice.invalid(option)
        if bad:
            return report(ex, title, "fail", bad)
        if choice.is_right(option):
            return report(ex, title, "pass", "correct!")
        return report(ex, title, "fail", choice.hints.get(_normalise(option), "not this one: reread the section "
                                                                            "and compare the costs."))

    checker.__name__ = checker.__qualname__ = name
    checker.__module__ = module
    checker.exercise = ex
    return checker


class Prediction:
    """Call it with an option before the experiment (recorded, nothing revealed); call ``.reveal(x)``
    after it: the run's measurement ``x`` is mapped to the option it supports by ``observe`` (kept in
    the checker module, not the notebook), shown, and the recorded prediction is graded."""

    def __init__(self, ex: Exercise, choice: _Choice, observe, describe):
        self.exercise, self._choice, self._observe, self._describe = ex, choice, observe, describe
        self.__name__ = ex.name
        self.reset()

    def reset(self):
        self.predicted = None
        self.revealed = False

    def __call__(self, option) -> None:
        ex = self.exercise
        if self.revealed:
            report(ex, ex.title, "todo", f"the result is already revealed; your prediction stays "
                                         f"{self.predicted!r} (restart the kernel to predict afresh).")
            return None
        if _unanswered(option):
            report(ex, ex.title, "todo", "no prediction yet — replace the `...` with your prediction, then run "
                                         "the experiment below.")
            return None
        bad = self._choice.invalid(option)
        if bad:
            report(ex, ex.title, "fail", bad)
            return None
        self.predicted = _normalise(option)
        report(ex, ex.title, "todo", f"prediction {self.predicted!r} recorded — now run the experiment.")
        return None

    def reveal(self, measurement) -> bool:
        """Show what the run says and grade the prediction made before. Raises if the run contradicts the
        stored answer: the answer key is measured, not claimed."""
        ex = self.exercise
        observed = _normalise(self._observe(measurement))
        if not self._choice.is_right(observed):
            raise AssertionError(f"{ex.id}: this run supports option {observed!r}, which is not the stored "
                                 "answer — the question or the answer key needs updating.")
        self.revealed = True
        shown = self._describe(measurement)
        if self.predicted is None:
            return report(ex, ex.title, "fail", f"the run shows {shown} — (you made no prediction before).")
        if self.predicted == observed:
            return report(ex, ex.title, "pass", f"the run shows {shown}: your prediction was right.")
        hint = self._choice.hints.get(self.predicted, "")
        return report(ex, ex.title, "fail", f"the run shows {shown}: not what you predicted." + (f" {hint}" if hint else ""))


def prediction(name: str, *, options: str, answer: str, observe, points: int, difficulty: int, minutes: int,
               title: str, describe=None, hints: dict | None = None, id: str | None = None) -> Prediction:
    """Register a prediction question (see :class:`Prediction`). ``observe(measurement) -> option``;
    ``describe(measurement) -> str`` is how the reveal shows the run."""
    module = _caller_module()
    ex = Exercise(id=id or f"{_module_tag(module)}.{name.removeprefix('predict_')}", name=name, title=title,
                  points=points, difficulty=difficulty, minutes=minutes, kind="prediction", module=module)
    choice = _Choice(ex, options, answer, hints)
    register(ex)
    return Prediction(ex, choice, observe, describe or (lambda m: f"{m!r}"))
