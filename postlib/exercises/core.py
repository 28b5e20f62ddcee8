"""The exercise registry, the metadata every exercise carries, and the one function that runs a checker.

An *exercise* is a checker function registered with :func:`exercise` (or one of the question helpers
in :mod:`postlib.exercises.questions`). It carries an ``id``, ``points``, a ``difficulty`` (1, 2 or 3:
★, ★★, ★★★) and an estimate in ``minutes``. Calling the checker prints (or, in a notebook, displays)
one line: the result, a hint that never gives the answer away, and the marks. The same line carries
a machine-readable record (MIME type :data:`RESULT_MIME`) that the grader collects from the executed
notebook; see :mod:`postlib.exercises.grader`.
"""
from __future__ import annotations

import html
import importlib
import pkgutil
import signal
import threading
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from .guard import Forbidden, guarded

__all__ = ["Exercise", "Mismatch", "TimeLimit", "EXERCISES", "RESULT_MIME", "exercise", "run_checker",
           "expect_tensor", "all_exercises", "report", "stars"]

RESULT_MIME = "application/vnd.postlib.exercise+json"
EXERCISES: dict[str, "Exercise"] = {}
DEFAULT_TIME_LIMIT_S = 60.0


class Mismatch(Exception):
    """Raised inside a checker's cases: the learner's answer is wrong; the message is the hint."""


class TimeLimit(BaseException):
    """The learner's code ran past the checker's time limit (a BaseException: ``except Exception`` in
    the learner's code cannot swallow it)."""


@dataclass(frozen=True)
class Exercise:
    """What the book shows beside an exercise and what the grader scores.

    ``kind`` is "function" (write a function), "number" (a number computed by hand), "choice"
    (multiple choice) or "prediction" (predict, then run the cell that reveals the result).
    ``name`` is the checker's name as the learner calls it (``check_softmax_attention``); it is unique
    across all chapters, so the grader finds an exercise from the call in a notebook cell.
    """
    id: str
    name: str
    title: str
    points: int
    difficulty: int
    minutes: int
    kind: str = "function"
    module: str = ""
    forbid: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self):
        if self.difficulty not in (1, 2, 3):
            raise ValueError(f"difficulty of {self.id} must be 1, 2 or 3 (★ to ★★★), got {self.difficulty!r}")
        if not (isinstance(self.points, int) and self.points > 0):
            raise ValueError(f"points of {self.id} must be a positive int, got {self.points!r}")
        if not (isinstance(self.minutes, int) and self.minutes > 0):
            raise ValueError(f"minutes of {self.id} must be a positive int, got {self.minutes!r}")

    @property
    def stars(self) -> str:
        return stars(self.difficulty)

    @property
    def marks(self) -> str:
        """``★★ · about 15 min · 3 points``: what the page shows next to the exercise."""
        return f"{self.stars} · about {self.minutes} min · {self.points} point{'s' * (self.points != 1)}"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "forbid"}


def stars(difficulty: int) -> str:
    return "★" * difficulty


def register(ex: Exercise) -> Exercise:
    """Add ``ex`` to :data:`EXERCISES`; ids and checker names must be unique across the book."""
    old = EXERCISES.get(ex.id)
    if old is not None and old.module != ex.module:
        raise ValueError(f"exercise id {ex.id!r} is used twice ({old.module} and {ex.module})")
    clash = [e for e in EXERCISES.values() if e.name == ex.name and e.id != ex.id]
    if clash:
        raise ValueError(f"checker name {ex.name!r} is used by {clash[0].id} and {ex.id}: names must be unique")
    EXERCISES[ex.id] = ex
    return ex


def _module_tag(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def exercise(*, points: int, difficulty: int, minutes: int, title: str | None = None, id: str | None = None,
             forbid: Iterable = (), allow: Iterable = (), time_limit_s: float = DEFAULT_TIME_LIMIT_S):
    """Register a "write this function" exercise. Decorate the *cases* function: it receives the
    learner's function, calls it on inputs it makes, and raises :class:`Mismatch` with a hint when an
    answer is wrong. The decorator returns the checker the chapter calls (``check_x(fn) -> bool``).

    While the learner's function runs, every postlib function (except the helpers in ``allow``) and
    everything in ``forbid`` (e.g. ``torch.nn.functional.scaled_dot_product_attention``) raises
    "implement it yourself": a checker cannot be passed by calling the library's own solution.

        @exercise(points=3, difficulty=2, minutes=15, title="softmax attention",
                  forbid=["torch.nn.functional.scaled_dot_product_attention"])
        def check_softmax_attention(fn):
            ...                                  # raise Mismatch("hint") on a wrong answer
    """
    def wrap(cases: Callable) -> Callable:
        name = cases.__name__
        ex = register(Exercise(id=id or f"{_module_tag(cases.__module__)}.{name.removeprefix('check_')}",
                               name=name, title=title or name.removeprefix("check_").replace("_", " "),
                               points=points, difficulty=difficulty, minutes=minutes, module=cases.__module__,
                               forbid=tuple(forbid)))
        allowed = tuple(allow)

        def checker(fn) -> bool:
            return run_checker(ex.title, fn, cases, exercise=ex, allow=allowed, time_limit_s=time_limit_s)

        checker.__name__ = checker.__qualname__ = name
        checker.__doc__ = cases.__doc__
        checker.__module__ = cases.__module__
        checker.exercise = ex
        return checker
    return wrap


def expect_tensor(out, what: str, shape):
    """The learner's ``out`` must be a tensor of ``shape``; otherwise a :class:`Mismatch` naming ``what``."""
    import torch
    if not isinstance(out, torch.Tensor):
        raise Mismatch(f"{what} should be a torch.Tensor, got {type(out).__name__}.")
    if tuple(out.shape) != tuple(shape):
        raise Mismatch(f"{what} should have shape {tuple(shape)}, got {tuple(out.shape)}.")
    return out


class _time_limit:
    """Raise :class:`TimeLimit` in the main thread after ``seconds`` (no-op elsewhere or without SIGALRM)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.active = (seconds is not None and hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread())

    def _fire(self, signum, frame):
        raise TimeLimit(f"did not finish within {self.seconds:g} s")

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


def run_checker(title: str, fn, cases: Callable[[Callable], object], *, exercise: Exercise | None = None,
                allow: tuple = (), time_limit_s: float | None = DEFAULT_TIME_LIMIT_S) -> bool:
    """Run ``cases(fn)`` and report. ``cases`` raises :class:`Mismatch` (with a hint) on a wrong answer.

    Never raises: a stub (``NotImplementedError``) is "not implemented yet", a crash is reported with
    its line, a call to postlib's own solution or a function past the time limit fails with a message.
    Returns True when every case passes.
    """
    if not callable(fn):
        return report(exercise, title, "fail", f"expected a function, got {type(fn).__name__}.")
    forbid = exercise.forbid if exercise else ()
    learner = guarded(fn, forbid=forbid, allow=allow) if exercise else fn
    try:
        with _time_limit(time_limit_s):
            cases(learner)
        if getattr(learner, "violations", None):
            raise Forbidden(learner.violations[0])
    except NotImplementedError:
        return report(exercise, title, "todo", "not implemented yet — replace the `raise NotImplementedError` "
                                               "with your code.")
    except Forbidden as cheat:
        return report(exercise, title, "fail", str(cheat))
    except Mismatch as wrong:
        return report(exercise, title, "fail", str(wrong))
    except TimeLimit as late:
        return report(exercise, title, "fail", f"your function {late} — is there an endless loop?")
    except Exception as exc:  # the learner's code crashed: show where, never raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return report(exercise, title, "fail", f"your function raised {type(exc).__name__}: {exc} "
                                               f"(line {where.lineno} of {where.name}).")
    return report(exercise, title, "pass", "correct!")


_ICON = {"pass": "✅", "fail": "❌", "todo": "⏳"}


def report(ex: Exercise | None, title: str, status: str, message: str) -> bool:
    """Show one result line (text in a terminal; text, HTML and a grader record in a notebook)."""
    line = f"{_ICON[status]} {title}: {message}"
    if ex is not None:
        line += f"   [{ex.id} · {ex.marks}]"
    shell = _ipython()
    if shell is None or ex is None:
        print(line)
    else:
        from IPython.display import display
        record = {**ex.as_dict(), "status": status, "message": message,
                  "awarded": ex.points if status == "pass" else 0}
        colour = {"pass": "#1a7f37", "fail": "#cf222e", "todo": "#6e7781"}[status]
        badge = (f'<span class="postlib-exercise-marks" title="{html.escape(ex.id)}">'
                 f"{html.escape(ex.marks)}</span>")
        body = (f'<div class="postlib-exercise-result postlib-{status}" style="border-left:3px solid {colour};'
                f'padding-left:.5em">{_ICON[status]} <b>{html.escape(title)}</b>: {html.escape(message)}'
                f"<br><small>{badge}</small></div>")
        display({"text/plain": line, "text/html": body, RESULT_MIME: record}, raw=True)
    return status == "pass"


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def all_exercises() -> dict[str, Exercise]:
    """Import every checker module of this package (new chapters included) and return the registry."""
    import postlib.exercises as package
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_") and info.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(EXERCISES)


_INFRASTRUCTURE = {"core", "guard", "questions", "grader", "editions", "guide"}
