"""Conceptual questions of the state-space chapters (chapters/02_ssm): numbers by hand, predictions,
multiple choices. None keeps its answer in plain text (see :mod:`postlib.exercises.questions`).

==============================  ===========================  =========================================
question                        page                         kind
==============================  ===========================  =========================================
check_euler_max_step            LTI systems                  a number: the largest stable Euler step
predict_bilinear_halving        LTI systems                  prediction: halve Δ, error shrinks by?
check_which_rule_unstable       LTI systems                  multiple choice
check_legs_ramp_c1              HiPPO                        a number: c₁ of a ramp
predict_legs_doubling           HiPPO                        prediction: double N for a smooth signal
check_which_measure             HiPPO                        multiple choice
check_s4d_decay_steps           S4 / S4D                     a number: a mode's memory in steps
predict_cauchy_exact            S4 / S4D                     prediction: exact or approximate kernel?
check_which_form_generation     S4 / S4D                     multiple choice
check_expanded_state_gib        Mamba                        a number: the state a GPU must not write
check_why_no_fft                Mamba                        multiple choice
predict_block_causality         Mamba                        prediction: which outputs change?
check_guess_all_right           selective copying            a number: chance of a perfect guess
check_why_lti_fails             selective copying            multiple choice
==============================  ===========================  =========================================
"""
from __future__ import annotations

import math

from .questions import choice_question, number_question, prediction

# --------------------------------------------------------------------------- LTI systems and discretization

EULER_LAMBDA = complex(-0.5, 3.0)        # the mode the question names


@number_question(points=1, difficulty=2, minutes=10, title="the largest stable Euler step", rel_tol=0.01,
                 id="ssm.euler_max_step",
                 near={2.0: "twice too large: |1 + Δλ|² ≤ 1 expands to 2Δ·Re λ + Δ²|λ|² ≤ 0.",
                       abs(EULER_LAMBDA) ** 2 / abs(EULER_LAMBDA): "divide by |λ|², not by |λ|."})
def check_euler_max_step():
    """Δ_max with |1 + Δλ| = 1 for λ = −½ + 3i: Δ = −2 Re λ / |λ|²."""
    return -2 * EULER_LAMBDA.real / abs(EULER_LAMBDA) ** 2


def _halving_option(ratio: float) -> str:
    return "a" if ratio < 3 else ("b" if ratio < 6 else "c")


predict_bilinear_halving = prediction(
    "predict_bilinear_halving", options="abc", answer="069198aee6d6834b", observe=_halving_option,
    describe=lambda r: f"the error shrinking by a factor of {r:.2f} when Δ is halved",
    points=1, difficulty=2, minutes=3, title="halve the step: bilinear", id="ssm.bilinear_halving",
    hints={"a": "a factor of 2 is first order, Euler's; bilinear averages both ends of the step.",
           "c": "a factor of 8 would be third order; the trapezoid rule is second order."})

check_which_rule_unstable = choice_question(
    "check_which_rule_unstable", options="abcd", answer="e878890f5f2e409f", points=1, difficulty=1, minutes=3,
    title="which rule can explode", id="ssm.which_rule_unstable",
    hints={"b": "backward Euler sends the whole left half-plane inside the unit disk: it over-damps, never explodes.",
           "c": "bilinear maps the left half-plane into the unit disk for every Δ.",
           "d": "ZOH gives |e^{Δλ}| = e^{Δ Re λ} < 1 whenever Re λ < 0."})

# --------------------------------------------------------------------------- HiPPO


@number_question(points=1, difficulty=2, minutes=10, title="a LegS coefficient by hand", rel_tol=0.01,
                 id="ssm.legs_ramp_c1",
                 near={1 / math.sqrt(3): "g₁ is normalised: √3 · P₁(2s − 1), not P₁ alone.",
                       math.sqrt(3): "½ is c₀, the ramp's mean; c₁ uses g₁(s) = √3 (2s − 1).",
                       -1.0: "the sign: s (2s − 1) is positive where most of the ramp's mass is."})
def check_legs_ramp_c1():
    """c₁ = ∫₀¹ s · √3 (2s − 1) ds = √3 (2/3 − 1/2) = √3/6."""
    return math.sqrt(3) / 6


def _doubling_option(ratio: float) -> str:
    return "c" if ratio < 1.5 else ("a" if ratio < 5 else "b")


predict_legs_doubling = prediction(
    "predict_legs_doubling", options="abc", answer="ab83999fe0bb7d12", observe=_doubling_option,
    describe=lambda r: f"the error of the smooth signal falling {r:.0f}× from N = 16 to N = 32",
    points=1, difficulty=2, minutes=3, title="double the memory", id="ssm.legs_doubling",
    hints={"a": "halving is what a signal with corners or jumps gets; a smooth one is approximated far faster.",
           "c": "more coefficients always fit at least as well: the projection onto a larger space is closer."})

check_which_measure = choice_question(
    "check_which_measure", options="abc", answer="2c0fe0daeb3a6455", points=1, difficulty=1, minutes=3,
    title="which HiPPO measure", id="ssm.which_measure",
    hints={"a": "LegT keeps a window of fixed length θ: you would have to choose θ, and older input is lost.",
           "b": "LagT weighs the past by e^{−(t−s)}: it forgets exponentially, on a fixed timescale."})

# --------------------------------------------------------------------------- S4 and S4D

S4D_DT, S4D_DECAY = 0.01, 0.5            # Δ and −Re λ of the S4D-Lin mode the question names


@number_question(points=1, difficulty=1, minutes=5, title="a mode's memory in steps", rel_tol=0.01,
                 id="ssm.s4d_decay_steps",
                 near={0.5: "|Ā| = e^{Δ Re λ} with Re λ = −½: the decay per step is Δ/2, not Δ.",
                       math.log(2): "that is the half-life; the question asks for 1/e."})
def check_s4d_decay_steps():
    """Steps k with |Ā|^k = e^{−1}: k Δ |Re λ| = 1."""
    return 1 / (S4D_DT * S4D_DECAY)


def _cauchy_option(err: float) -> str:
    return "a" if err < 1e-9 else "b"


predict_cauchy_exact = prediction(
    "predict_cauchy_exact", options="abc", answer="c055b2cd38ec53fa", observe=_cauchy_option,
    describe=lambda e: f"a largest relative difference of {e:.1e} over the lengths tried",
    points=1, difficulty=2, minutes=3, title="exact or approximate kernel?", id="ssm.cauchy_exact",
    hints={"b": "C̃ = C(I − Ā^L) absorbs the truncation at L exactly: nothing is approximated.",
           "c": "any L works: the roots of unity exist for every L, and s4_kernel takes the limit at z = −1."})

check_which_form_generation = choice_question(
    "check_which_form_generation", options="abc", answer="72a7d093e88349c8", points=1, difficulty=1, minutes=3,
    title="which S4D form for generation", id="ssm.which_form_generation",
    hints={"a": "recomputing and convolving costs O(L log L) per token; the state already holds the past.",
           "c": "the Cauchy kernel computes the whole kernel K, a training-time object."})

# --------------------------------------------------------------------------- Mamba

STATE_SHAPE, STATE_BYTES = (8, 1536, 2048, 16), 4     # (batch, dim, L, N), fp32


@number_question(points=1, difficulty=1, minutes=5, title="the expanded state in GiB", rel_tol=0.01,
                 id="ssm.expanded_state_gib",
                 near={2.0: "fp32 is 4 bytes a number.", 0.5: "fp32 is 4 bytes a number, not 2.",
                       2**30 / 1e9: "GiB is 2³⁰ bytes, not 10⁹.", 1 / 16: "every token keeps all N states."})
def check_expanded_state_gib():
    """batch · dim · L · N numbers of 4 bytes, in GiB."""
    return math.prod(STATE_SHAPE) * STATE_BYTES / 2**30


check_why_no_fft = choice_question(
    "check_why_no_fft", options="abc", answer="f05e65b8f5500e86", points=1, difficulty=1, minutes=3,
    title="why Mamba cannot convolve", id="ssm.why_no_fft",
    hints={"a": "S4's kernels are as long as the sequence too, and the FFT handles them in O(L log L).",
           "c": "FFTs run very well on GPUs (cuFFT); the obstacle is mathematical."})


def _causality_option(changed) -> str:
    changed = [bool(c) for c in changed]
    first = changed.index(True) if any(changed) else len(changed)
    if all(changed):
        return "a"
    if changed.count(True) == 1:
        return "c"
    return "b" if all(changed[first:]) and not any(changed[:first]) else "a"


predict_block_causality = prediction(
    "predict_block_causality", options="abc", answer="b2afc7af7922f539", observe=_causality_option,
    describe=lambda changed: (f"outputs {', '.join(str(i) for i, c in enumerate(changed) if c) or 'none'} changing "
                              f"out of 0…{len(changed) - 1}"),
    points=1, difficulty=1, minutes=3, title="which outputs change?", id="ssm.block_causality",
    hints={"a": "the convolution pads on the left only and the scan runs forward: nothing reaches back in time.",
           "c": "the state carries the change forward: every later output reads it."})

# --------------------------------------------------------------------------- selective copying

COPY_COLORS, COPY_MEMORIZE = 4, 4


@number_question(points=1, difficulty=1, minutes=5, title="a perfect guess", rel_tol=0.01,
                 id="ssm.guess_all_right",
                 near={100.0: "as a fraction, not a percentage.",
                       COPY_COLORS ** (COPY_MEMORIZE - 1): "that is one answer; all four must be right.",
                       float(COPY_COLORS ** COPY_MEMORIZE): "a probability of 1? The four guesses are independent: "
                                                             "multiply their chances, do not add them."})
def check_guess_all_right():
    """(1/colours)^(tokens to copy)."""
    return (1 / COPY_COLORS) ** COPY_MEMORIZE


check_why_lti_fails = choice_question(
    "check_why_lti_fails", options="abc", answer="5eb77a68ca1638b3", points=1, difficulty=1, minutes=3,
    title="why an LTI SSM fails", id="ssm.why_lti_fails",
    hints={"a": "more state does not help: the same kernel still weighs every position the same way in every "
                "sequence.",
           "c": "S4D trains fine on other tasks (the S4 chapter's delayed copy)."})
