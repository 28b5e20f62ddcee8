"""The exercise machinery: marks, the guard against calling postlib's solution, time limits, questions."""
from __future__ import annotations

import math

import pytest
import torch

from postlib.attention import softmax_attention
from postlib.attention import softmax as softmax_module
from postlib.exercises import (EXERCISES, Exercise, Forbidden, Mismatch, all_exercises, answer_hash, choice_question,
                               guarded, run_checker)
from postlib.exercises import baseline as ex
from postlib.exercises.core import TimeLimit


def good_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


def test_every_exercise_has_marks_and_a_unique_checker_name():
    registry = all_exercises()
    assert len(registry) >= 25
    assert len({e.name for e in registry.values()}) == len(registry)
    for e in registry.values():
        assert e.difficulty in (1, 2, 3) and e.points > 0 and e.minutes > 0
        assert e.kind in ("function", "number", "choice", "prediction")
        assert e.marks.startswith("★" * e.difficulty + " ·")


def test_invalid_marks_are_refused():
    with pytest.raises(ValueError, match="difficulty"):
        Exercise(id="x.y", name="check_y", title="y", points=1, difficulty=4, minutes=5)
    with pytest.raises(ValueError, match="points"):
        Exercise(id="x.y", name="check_y", title="y", points=0, difficulty=1, minutes=5)


def test_result_line_shows_the_marks(capsys):
    assert ex.check_softmax_attention(good_attention)
    out = capsys.readouterr().out
    assert "✅ softmax attention: correct!" in out and "[baseline.softmax_attention · ★ · about 10 min · 2 points]" in out


@pytest.mark.parametrize("cheat", [
    lambda q, k, v: softmax_attention(q, k, v),                       # a name bound by an earlier import
    lambda q, k, v: softmax_module.softmax_attention(q, k, v),        # through the module
    lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),   # the forbid list
], ids=["bound-name", "module-attribute", "torch-forbid"])
def test_calling_the_solution_fails_with_a_clear_message(cheat, capsys):
    assert ex.check_softmax_attention(cheat) is False
    assert "implement it yourself" in capsys.readouterr().out


def test_a_caught_forbidden_call_still_fails(capsys):
    def sneaky(q, k, v):
        try:
            return softmax_attention(q, k, v)
        except Exception:
            return good_attention(q, k, v)

    assert ex.check_softmax_attention(sneaky) is False
    assert "softmax_attention" in capsys.readouterr().out


def test_everything_is_restored_after_the_call():
    q = torch.randn(1, 1, 3, 4)
    before = softmax_attention.__code__
    learner = guarded(lambda: softmax_attention(q, q, q), forbid=["torch.nn.functional.scaled_dot_product_attention"])
    with pytest.raises(Forbidden):
        learner()
    assert softmax_attention.__code__ is before
    assert torch.nn.functional.scaled_dot_product_attention.__module__ != __name__
    assert softmax_attention(q, q, q).shape == q.shape                  # the checker's reference still works
    helper = guarded(lambda: softmax_attention(q, q, q), allow=[softmax_attention])
    assert helper().shape == q.shape                                    # an allowed helper runs


def test_an_endless_function_fails_after_the_time_limit(capsys):
    def endless(*args):
        while True:
            pass

    ok = run_checker("demo", endless, lambda fn: fn(), exercise=ex.check_attention_flops.exercise, time_limit_s=0.3)
    assert ok is False
    assert "did not finish within 0.3 s" in capsys.readouterr().out
    assert issubclass(TimeLimit, BaseException) and not issubclass(TimeLimit, Exception)


def test_number_question_hints_and_tolerance(capsys):
    assert ex.check_kv_cache_gib(...) is False and "not answered yet" in capsys.readouterr().out
    assert ex.check_kv_cache_gib(4.0) and ex.check_kv_cache_gib(4.02)
    assert not ex.check_kv_cache_gib(2.0) and "K and V" in capsys.readouterr().out
    assert not ex.check_kv_cache_gib(4 * 2**30 / 1e9) and "GB" in capsys.readouterr().out
    assert not ex.check_kv_cache_gib("4") and "give a number" in capsys.readouterr().out


def test_choice_answers_are_hashed_and_checked(capsys):
    assert ex.check_which_form_decoding("(B)")
    assert not ex.check_which_form_decoding("a") and "O(L²)" in capsys.readouterr().out
    assert not ex.check_which_form_decoding("z") and "one of a, b, c" in capsys.readouterr().out
    source = open(ex.__file__).read()
    assert 'which_form = "b"' not in source and answer_hash("baseline.which_form_decoding", "b") in source
    with pytest.raises(ValueError, match="matches none of the options"):
        choice_question("check_bogus_choice", options="ab", answer=answer_hash("other.id", "a"), points=1,
                        difficulty=1, minutes=1, title="bogus")
    assert "test_core.bogus_choice" not in EXERCISES


def test_prediction_is_recorded_before_the_reveal_and_graded_on_it(capsys):
    p = ex.predict_flash_exactness
    p.reset()
    try:
        p("b")
        assert "recorded" in capsys.readouterr().out
        assert p.reveal(1e-17) is False                       # graded on what was predicted before
        p("a")                                                # too late: the result is revealed
        assert "stays 'b'" in capsys.readouterr().out and p.predicted == "b"
        p.reset()
        p("a")
        assert p.reveal(3e-16) is True
        p.reset()
        with pytest.raises(AssertionError, match="not the stored answer"):
            p.reveal(1e-3)                                    # a run that contradicts the key fails loudly
    finally:
        p.reset()


def test_run_checker_without_marks_still_works(capsys):
    def cases(fn):
        raise Mismatch("a hint")

    assert run_checker("demo", lambda: None, cases) is False
    assert "❌ demo: a hint" in capsys.readouterr().out


def test_every_public_checker_carries_marks():
    """A new chapter's checker must be registered (@exercise or a question helper), or the grader, the
    student notebooks and the guide would not see it."""
    import importlib
    import pkgutil

    import postlib.exercises as package
    from postlib.exercises.core import _INFRASTRUCTURE
    unregistered = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in _INFRASTRUCTURE:
            continue
        module = importlib.import_module(f"postlib.exercises.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith(("check_", "predict_")) and callable(obj) and not hasattr(obj, "exercise"):
                unregistered.append(f"{info.name}.{name}")
    assert not unregistered, f"checkers without marks: {unregistered}"
