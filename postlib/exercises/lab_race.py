"""Exercises of the scaling race (chapters/07_lab/race.md): four checkers and two questions.

=============================  ======================================================
checker                        the learner writes
=============================  ======================================================
check_loglog_exponent          ``fn(lengths, values) -> p``     least-squares slope in log-log
check_power_law_crossover      ``fn(a1, p1, a2, p2) -> L``      where a1·L^p1 = a2·L^p2
check_softmax_longest_length   ``fn(budget_bytes, batch, heads, itemsize) -> L``   the memory wall
check_predicted_call_ms        ``fn(history, length) -> ms``    the race's time prediction
check_race_extrapolation       a number by hand: seconds at 65 536 tokens
check_why_length_major         a multiple choice: why the race runs length by length
=============================  ======================================================

Every checker builds its own cases (awkward lengths, exponents that are not integers) and
compares with the formula written out here, never with ``postlib.bench``'s own functions
(which the forbid-list blocks while the learner's function runs).
"""
from __future__ import annotations

import math
import random

from .core import Mismatch, exercise
from .questions import choice_question, number_question


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise Mismatch(f"{what} should be a number, got {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value):
        raise Mismatch(f"{what} is {value}: it should be a finite number.")
    return value


# --------------------------------------------------------------------------- 1. the fitted exponent

def _slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


@exercise(points=2, difficulty=1, minutes=10, title="log-log exponent",
          forbid=["numpy.polyfit", "numpy.polynomial.polynomial.polyfit", "scipy.stats.linregress",
                  "torch.linalg.lstsq"])
def check_loglog_exponent(fn):
    """``fn(lengths, values)``: the least-squares slope p of log(values) against log(lengths)."""
    rng = random.Random(7)
    cases = [([256, 512, 1024], [3.0 * n ** 2 for n in (256, 512, 1024)], "an exact L² law"),
             ([100, 300, 997, 4099], [0.2 * n ** 1.37 for n in (100, 300, 997, 4099)], "L^1.37 at uneven lengths"),
             ([64, 128, 256, 512, 1024], [(n ** 1.1) * math.exp(rng.uniform(-0.2, 0.2)) for n in (64, 128, 256, 512, 1024)],
              "noisy points"),
             ([2, 3], [5.0, 5.0], "a constant")]
    for lengths, values, what in cases:
        got = _number(fn(list(lengths), list(values)), "the exponent")
        want = _slope(lengths, values)
        if abs(got - want) > 1e-6 * max(1.0, abs(want)):
            if len(lengths) > 2 and abs(got - math.log(values[-1] / values[0]) / math.log(lengths[-1] / lengths[0])) < 1e-9:
                raise Mismatch(f"with {what}: that is the slope between the first and last points; the fit is a "
                               "least-squares line through all of them.")
            raise Mismatch(f"with {what}: fit a straight line y = c + p·x to x = log L, y = log value and return p.")


# --------------------------------------------------------------------------- 2. where two power laws cross

@exercise(points=2, difficulty=2, minutes=10, title="crossover of two power laws")
def check_power_law_crossover(fn):
    """``fn(a1, p1, a2, p2)``: the length L > 0 where a1·L^p1 = a2·L^p2 (p1 ≠ p2)."""
    cases = [(10.0, 1.0, 1e-3, 2.0), (0.05, 1.1, 2e-4, 2.3), (3.0, 1.5, 3.0, 1.0), (7.5, 0.9, 0.01, 1.9)]
    for a1, p1, a2, p2 in cases:
        got = _number(fn(a1, p1, a2, p2), "the crossover length")
        want = (a2 / a1) ** (1.0 / (p1 - p2))
        if not math.isclose(got, want, rel_tol=1e-6):
            if math.isclose(got, (a1 / a2) ** (1.0 / (p1 - p2)), rel_tol=1e-6):
                raise Mismatch(f"for a1={a1}, p1={p1}, a2={a2}, p2={p2}: the ratio of the prefactors is upside "
                               "down; divide both sides by a1·L^p2 and solve for L.")
            raise Mismatch(f"for a1={a1}, p1={p1}, a2={a2}, p2={p2}: {got:.6g} does not make the two laws equal. "
                           "Take logarithms: log a1 + p1·log L = log a2 + p2·log L.")


# --------------------------------------------------------------------------- 3. softmax's memory wall

@exercise(points=2, difficulty=2, minutes=10, title="softmax's longest length")
def check_softmax_longest_length(fn):
    """``fn(budget_bytes, batch, heads, itemsize)``: the longest power of two L whose batch·heads·L² scores
    (itemsize bytes each) stay strictly below the budget; 0 when not even L = 1 fits."""
    cases = [(2 * 2**30, 1, 4, 4), (2 * 2**30, 1, 1, 4), (16 * 2**20, 2, 4, 2), (4 * 2**20, 1, 1, 4), (3, 1, 1, 4)]
    for budget, batch, heads, itemsize in cases:
        got = fn(budget, batch, heads, itemsize)
        if isinstance(got, bool) or not isinstance(got, int):
            raise Mismatch(f"return an int (a power of two, or 0), got {type(got).__name__}.")
        want, length = 0, 1
        while batch * heads * length * length * itemsize < budget:
            want, length = length, 2 * length
        if got != want:
            if got == 2 * want and batch * heads * got * got * itemsize == budget:
                raise Mismatch(f"with a budget of {budget} bytes: a scores matrix of exactly the budget does not "
                               "fit (the race refuses an estimate at or above the budget).")
            if got and got & (got - 1):
                raise Mismatch("the race doubles the length: return a power of two.")
            raise Mismatch(f"with budget={budget}, batch={batch}, heads={heads}, itemsize={itemsize}: L={got} is "
                           "not the longest power of two whose batch·heads·L² scores fit below the budget.")


# --------------------------------------------------------------------------- 4. the race's time prediction

def _prediction(history, length) -> float:
    l1, t1 = history[-1]
    p = 2.0 if len(history) < 2 else _slope(*zip(*history[-3:]))
    return t1 * (length / l1) ** min(2.5, max(1.0, p))


@exercise(points=3, difficulty=2, minutes=15, title="predicting the next call",
          forbid=["numpy.polyfit", "numpy.polynomial.polynomial.polyfit", "scipy.stats.linregress",
                  "torch.linalg.lstsq"])
def check_predicted_call_ms(fn):
    """``fn(history, length)``: the time of one call at ``length`` predicted from ``history`` = [(L, ms), ...]
    (sorted by L, at least one point): t·(length/L)^p from the last point (L, t), where p is the
    least-squares log-log slope of the last three points (of both when there are two), held between
    1 and 2.5, and p = 2 when there is only one point."""
    cases = [([(256, 4.0), (512, 16.0)], 2048, "a clean L² law"),
             ([(256, 10.0), (512, 11.0)], 1024, "a flat start (slope below 1)"),
             ([(100, 1.0), (200, 20.0)], 400, "a steep jump (slope above 2.5)"),
             ([(300, 7.0)], 900, "a single measured point"),
             ([(128, 2.0), (256, 3.0), (512, 7.5), (1024, 16.0)], 3072, "four points (only the last three count)")]
    for history, length, what in cases:
        got = _number(fn(list(history), length), "the predicted time")
        want = _prediction(history, length)
        if not math.isclose(got, want, rel_tol=1e-9):
            raw = None if len(history) < 2 else history[-1][1] * (length / history[-1][0]) ** _slope(
                *zip(*history[-3:]))
            if raw is not None and math.isclose(got, raw, rel_tol=1e-9):
                raise Mismatch(f"with {what}: hold the exponent between 1 and 2.5 before extrapolating.")
            raise Mismatch(f"with {what}: predicted {got:.4g} ms. Extrapolate from the LAST point with the "
                           "slope fitted through the last three points (2 with a single point).")


# --------------------------------------------------------------------------- 5. a number by hand

RACE_T_MS, RACE_L, RACE_TARGET, RACE_P = 500.0, 4096, 65536, 2.0   # the numbers the chapter's question gives


@number_question(points=1, difficulty=1, minutes=4, title="extrapolating softmax", rel_tol=0.01,
                 near={1 / 16: "that is a linear extrapolation: the time grows as L², not L.",
                       1e3: "give the answer in seconds, not milliseconds."})
def check_race_extrapolation():
    """Seconds of one softmax call at 65 536 tokens, from 500 ms at 4096 and time ∝ L²."""
    return RACE_T_MS * (RACE_TARGET / RACE_L) ** RACE_P / 1e3


# --------------------------------------------------------------------------- 6. why length by length

check_why_length_major = choice_question(
    "check_why_length_major", options="abc", answer="10ef32729beaa321", points=1, difficulty=1, minutes=3,
    title="why the race runs length by length",
    hints={"b": "nothing is shared between two mixers' calls; the order does not make a call faster.",
           "c": "memory is checked per point from the estimate, whatever the order."})
