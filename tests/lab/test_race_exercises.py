"""Race-page checkers: correct answers pass, typical mistakes fail with their hint, stubs never raise."""
import math

import pytest

from postlib.exercises import lab_race as ex


def good_exponent(lengths, values):
    lx, ly = [math.log(x) for x in lengths], [math.log(y) for y in values]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def endpoint_exponent(lengths, values):
    return math.log(values[-1] / values[0]) / math.log(lengths[-1] / lengths[0])


def good_crossover(a1, p1, a2, p2):
    return math.exp((math.log(a2) - math.log(a1)) / (p1 - p2))


def good_longest(budget, batch, heads, itemsize):
    length = 0
    while batch * heads * (2 * length or 1) ** 2 * itemsize < budget:
        length = 2 * length or 1
    return length


def good_prediction(history, length):
    l1, t1 = history[-1]
    p = 2.0 if len(history) == 1 else good_exponent(*zip(*history[-3:]))
    return t1 * (length / l1) ** min(2.5, max(1.0, p))


def unclamped_prediction(history, length):
    l1, t1 = history[-1]
    p = 2.0 if len(history) == 1 else good_exponent(*zip(*history[-3:]))
    return t1 * (length / l1) ** p


def two_point_prediction(history, length):
    l1, t1 = history[-1]
    p = 2.0 if len(history) == 1 else math.log(t1 / history[-2][1]) / math.log(l1 / history[-2][0])
    return t1 * (length / l1) ** min(2.5, max(1.0, p))


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("checker, good", [(ex.check_loglog_exponent, good_exponent),
                                           (ex.check_power_law_crossover, good_crossover),
                                           (ex.check_softmax_longest_length, good_longest),
                                           (ex.check_predicted_call_ms, good_prediction)])
def test_correct_answers_pass_and_stubs_do_not_raise(checker, good, capsys):
    assert checker(good) is True
    assert checker(stub) is False
    assert "not implemented" in capsys.readouterr().out.lower()


@pytest.mark.parametrize("checker, wrong, hint", [
    (ex.check_loglog_exponent, endpoint_exponent, "least-squares"),
    (ex.check_power_law_crossover, lambda a1, p1, a2, p2: (a1 / a2) ** (1 / (p1 - p2)), "upside down"),
    (ex.check_softmax_longest_length,
     lambda budget, b, h, s: max((2 ** k for k in range(40) if b * h * 4 ** k * s <= budget), default=0),
     "exactly the budget"),
    (ex.check_predicted_call_ms, unclamped_prediction, "between 1 and 2.5"),
    (ex.check_predicted_call_ms, two_point_prediction, "last three points"),
])
def test_typical_mistakes_get_their_hint(checker, wrong, hint, capsys):
    assert checker(wrong) is False
    assert hint in capsys.readouterr().out


def test_the_questions_grade_the_right_answers(capsys):
    assert ex.check_race_extrapolation(128.0) is True
    assert ex.check_race_extrapolation(8.0) is False and "linear" in capsys.readouterr().out
    assert ex.check_race_extrapolation(128_000.0) is False and "seconds" in capsys.readouterr().out
    assert ex.check_why_length_major("a") is True
    assert ex.check_why_length_major("b") is False



@pytest.mark.parametrize("history", [[(256, 4.0)], [(256, 4.0), (512, 16.0)], [(256, 10.0), (512, 11.0)],
                                     [(128, 2.0), (256, 3.0), (512, 7.5), (1024, 16.0)], [(100, 1.0), (200, 20.0)]])
def test_the_exercise_states_the_race_s_own_prediction_rule(history):
    from postlib.bench.experiments.race import _predicted_ms
    assert ex._prediction(history, 4096) == pytest.approx(_predicted_ms(history, 4096)[0], rel=1e-12)
