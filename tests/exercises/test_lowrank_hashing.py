"""Low-rank and hashing checkers: correct answers pass, typical mistakes fail, stubs never raise."""
import math

import torch

from postlib.exercises import lowrank_hashing as ex


def good_linformer(q, k, v, E, F):
    s = q @ (E @ k).transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(s, -1) @ (F @ v)


def good_rank_k(P, k):
    U, S, Vh = torch.linalg.svd(P)
    return (U[:, :k] * S[:k]) @ Vh[:k]


def good_hash(x, R):
    xr = x @ R
    return torch.cat([xr, -xr], -1).argmax(-1)


def good_sort(b):
    return torch.argsort(b, stable=True)


def good_inverse(y1, y2, f, g):
    x2 = y2 - g(y1)
    return y1 - f(x2), x2


def stub(*args):
    raise NotImplementedError


def test_correct_answers_pass():
    assert ex.check_linformer(good_linformer)
    assert ex.check_best_rank_k(good_rank_k)
    assert ex.check_lsh_hash(good_hash)
    assert ex.check_sort_by_bucket(good_sort)
    assert ex.check_reversible_inverse(good_inverse)


def test_typical_mistakes_fail(capsys):
    assert not ex.check_linformer(lambda q, k, v, E, F: good_linformer(q, k, v, F, E))
    assert not ex.check_best_rank_k(lambda P, k: (lambda U, S, Vh: (U[:, -k:] * S[-k:]) @ Vh[-k:])(*torch.linalg.svd(P)))
    assert "largest" in capsys.readouterr().out
    assert not ex.check_lsh_hash(lambda x, R: (x @ R).argmax(-1))
    assert "−xR" in capsys.readouterr().out
    assert not ex.check_sort_by_bucket(lambda b: torch.sort(b).values)
    assert not ex.check_reversible_inverse(lambda y1, y2, f, g: (y1 - f(y2), y2 - g(y1)))


def test_stubs_report_not_implemented(capsys):
    for checker in (ex.check_linformer, ex.check_best_rank_k, ex.check_lsh_hash, ex.check_sort_by_bucket,
                    ex.check_reversible_inverse):
        assert checker(stub) is False
    assert capsys.readouterr().out.count("not implemented yet") == 5


def test_questions(capsys):
    import pytest
    assert ex.check_collision_in_rounds(1 - (1 / 3) ** 3)
    assert not ex.check_collision_in_rounds(2 / 3) and "one round" in capsys.readouterr().out
    assert not ex.check_collision_in_rounds((2 / 3) ** 3) and "every" in capsys.readouterr().out
    assert not ex.check_collision_in_rounds((1 / 3) ** 3) and "complement" in capsys.readouterr().out
    assert ex.check_which_generates("c")
    assert not ex.check_which_generates("b") and "later tokens hash" in capsys.readouterr().out
    p = ex.predict_sharper_rank
    p.reset()
    try:
        p("b")
        assert p.reveal((7, 11)) is False and "permutation" in capsys.readouterr().out
        p.reset()
        with pytest.raises(AssertionError, match="not the stored answer"):
            p.reveal((11, 7))
    finally:
        p.reset()
