"""Exercise checkers, one module per chapter.

A checker runs the learner's function on random inputs (awkward shapes
included), compares it with postlib's reference, prints ✅ or ❌ with a hint
that never gives the answer away, and returns True or False. It never raises:
a function that raises ``NotImplementedError`` is reported as "not implemented
yet", and any other exception is reported with its message.

    from postlib.exercises.baseline import check_softmax_attention
    check_softmax_attention(my_attention)
"""
from __future__ import annotations

import traceback
from typing import Callable, Iterable

__all__ = ["Mismatch", "expect_tensor", "run_checker"]


class Mismatch(Exception):
    """Raised inside a checker's cases: the learner's answer is wrong; the message is the hint."""


def expect_tensor(out, what: str, shape):
    """The learner's ``out`` must be a tensor of ``shape``; otherwise a :class:`Mismatch` naming ``what``."""
    import torch
    if not isinstance(out, torch.Tensor):
        raise Mismatch(f"{what} should be a torch.Tensor, got {type(out).__name__}.")
    if tuple(out.shape) != tuple(shape):
        raise Mismatch(f"{what} should have shape {tuple(shape)}, got {tuple(out.shape)}.")
    return out


def run_checker(title: str, fn, cases: Callable[[Callable], Iterable[str] | None]) -> bool:
    """Run ``cases(fn)`` and report. ``cases`` raises :class:`Mismatch` (with a hint) on a wrong answer.

    Returns True when every case passes; prints one friendly line either way.
    """
    if not callable(fn):
        print(f"❌ {title}: expected a function, got {type(fn).__name__}.")
        return False
    try:
        cases(fn)
    except NotImplementedError:
        print(f"⏳ {title}: not implemented yet — replace the `raise NotImplementedError` with your code.")
        return False
    except Mismatch as wrong:
        print(f"❌ {title}: {wrong}")
        return False
    except Exception as exc:  # the learner's code crashed: show where, never raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(f"❌ {title}: your function raised {type(exc).__name__}: {exc} "
              f"(line {where.lineno} of {where.name}).")
        return False
    print(f"✅ {title}: correct!")
    return True
