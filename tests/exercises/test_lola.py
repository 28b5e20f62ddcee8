"""LoLA checkers: correct answers pass, typical mistakes fail with their hint, questions grade as stored."""
import math

import pytest
import torch
import torch.nn.functional as F

from postlib.exercises import lola as ex


def phi(x):
    return F.elu(x) + 1


def good_error(k, v, S, z):
    pk = phi(k)
    return (v - (pk @ S) / ((pk * z[:, :, None]).sum(-1, keepdim=True) + 1e-6)).norm(dim=-1)


def good_read(q, k, v, valid, S, z):
    w = torch.exp((k @ q[..., None])[..., 0] / math.sqrt(q.shape[-1])) * valid
    pq = phi(q)
    num = (w[..., None] * v).sum(2) + torch.einsum("bhd,bhdv->bhv", pq, S)
    return num / (w.sum(-1) + (pq * z).sum(-1) + 1e-6)[..., None]


def test_correct_answers_pass():
    assert ex.check_self_recall_error(good_error)
    assert ex.check_lola_read(good_read)


def test_typical_mistakes_fail_with_a_hint(capsys):
    assert not ex.check_self_recall_error(lambda k, v, S, z: good_error(k, v, S, z) ** 2)
    assert "squared" in capsys.readouterr().out
    assert not ex.check_self_recall_error(lambda k, v, S, z: (v - (k @ S) / ((k * z[:, :, None]).sum(-1, keepdim=True)
                                                                            + 1e-6)).norm(dim=-1))
    assert "φ(k_j)" in capsys.readouterr().out
    assert not ex.check_self_recall_error(lambda k, v, S, z: (v - phi(k) @ S).norm(dim=-1))
    assert "divide" in capsys.readouterr().out

    def apart(q, k, v, valid, S, z):
        w = torch.exp((k @ q[..., None])[..., 0] / math.sqrt(q.shape[-1])) * valid
        pq = phi(q)
        exact = (w[..., None] * v).sum(2) / w.sum(-1)[..., None]
        linear = torch.einsum("bhd,bhdv->bhv", pq, S) / (pq * z).sum(-1)[..., None]
        return 0.5 * (exact + linear)

    assert not ex.check_lola_read(apart)
    assert "numerators" in capsys.readouterr().out
    assert not ex.check_lola_read(lambda q, k, v, valid, S, z: good_read(q, k, v, torch.ones_like(valid), S, z))
    assert "valid" in capsys.readouterr().out


def test_stubs_report_not_implemented(capsys):
    def stub(*args):
        raise NotImplementedError
    assert ex.check_self_recall_error(stub) is False and ex.check_lola_read(stub) is False
    assert capsys.readouterr().out.count("not implemented yet") == 2


def test_questions(capsys):
    right = 2 * 4096 * 128 / (2 * 128 * 128 + 128 * 128 + 128)
    assert ex.check_lola_cache_ratio(right) and not ex.check_lola_cache_ratio(32.0)
    assert "linear state" in capsys.readouterr().out
    assert ex.check_which_leaves("b") and not ex.check_which_leaves("a")
    p = ex.predict_no_cache_recall
    p.reset()
    try:
        p("b")
        assert p.reveal({"lola": [0.92, 0.5], "softmax": 0.04, "linear": 0.95}) is True
        p.reset()
        with pytest.raises(AssertionError, match="not the stored answer"):
            p.reveal({"lola": [0.05, 0.04], "softmax": 0.04, "linear": 0.95})
    finally:
        p.reset()
