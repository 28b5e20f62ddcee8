"""Exercises and coursework: checkers with marks, conceptual questions, a grader, two editions.

One module per chapter (``baseline.py``, ``ssm.py`` ...) defines that chapter's checkers::

    from postlib.exercises import Mismatch, exercise, expect_tensor

    @exercise(points=3, difficulty=2, minutes=15, title="softmax attention",
              forbid=["torch.nn.functional.scaled_dot_product_attention"])
    def check_softmax_attention(fn):
        out = expect_tensor(fn(q, k, v), "the output", (b, h, lq, dv))    # fn: the learner's function
        if not close(out, reference):
            raise Mismatch("a hint that never prints the answer")

A checker runs the learner's function on inputs it makes (awkward shapes included) while postlib's own
solutions are switched off (:mod:`.guard`), prints ✅/❌/⏳ with a hint and the marks (★ difficulty,
minutes, points), returns True/False, and never raises. Conceptual questions (a number computed by
hand, a multiple choice, a prediction before a run) live in :mod:`.questions`. In a chapter, the
learner's cell is tagged ``exercise`` and the solution cell ``solution`` (plus ``hide-cell``);
:mod:`.editions` builds the student edition without the solution cells, and
``python -m postlib.exercises grade notebook.ipynb`` grades completed notebooks (:mod:`.grader`).
CONTRIBUTING.md, "Exercises and coursework", is the guide for chapter authors.
"""
from .core import (EXERCISES, RESULT_MIME, Exercise, Mismatch, TimeLimit, all_exercises, expect_tensor,
                   exercise, report, run_checker, stars)
from .guard import Forbidden, guarded
from .questions import Prediction, answer_hash, choice_question, number_question, prediction

__all__ = ["EXERCISES", "RESULT_MIME", "Exercise", "Forbidden", "Mismatch", "Prediction", "TimeLimit",
           "all_exercises", "answer_hash", "choice_question", "exercise", "expect_tensor", "guarded",
           "number_question", "prediction", "report", "run_checker", "stars"]
