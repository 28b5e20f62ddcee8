"""Chapter 1 checkers: correct answers pass, typical mistakes fail with a hint, stubs never raise."""
import math

import pytest
import torch

from postlib.exercises import baseline as ex
from postlib.exercises import run_checker


# ----------------------------------------------------------------- correct solutions (written from the equations)

def good_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def good_mask(length_q, length_k):
    i = torch.arange(length_q)[:, None] + (length_k - length_q)
    return torch.arange(length_k)[None, :] <= i


def good_merge(m_a, l_a, acc_a, m_b, l_b, acc_b):
    m = torch.maximum(m_a, m_b)
    ca, cb = torch.exp(m_a - m), torch.exp(m_b - m)
    return m, l_a * ca + l_b * cb, acc_a * ca[..., None] + acc_b * cb[..., None]


def good_kv_step(q_t, k_t, v_t, cache):
    k = torch.cat([cache["k"], k_t], dim=2)
    v = torch.cat([cache["v"], v_t], dim=2)
    return good_attention(q_t, k, v), {"k": k, "v": v}


def good_flops(length, head_dim):
    return 2 * 2 * length * length * head_dim


def stub(*args):
    raise NotImplementedError


CHECKERS = [
    (ex.check_softmax_attention, good_attention),
    (ex.check_causal_mask, good_mask),
    (ex.check_online_softmax_merge, good_merge),
    (ex.check_kv_cache_step, good_kv_step),
    (ex.check_attention_flops, good_flops),
]


@pytest.mark.parametrize("checker,solution", CHECKERS)
def test_correct_solution_passes(checker, solution, capsys):
    assert checker(solution) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [c for c, _ in CHECKERS])
def test_stub_is_not_implemented_yet_and_does_not_raise(checker, capsys):
    assert checker(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [c for c, _ in CHECKERS])
def test_crash_and_non_callable_are_reported(checker, capsys):
    def crash(*args):
        return {}["missing"]

    assert checker(crash) is False
    assert "raised KeyError" in capsys.readouterr().out
    assert checker(42) is False
    assert "expected a function" in capsys.readouterr().out


def _fails_with(checker, fn, capsys, fragment):
    assert checker(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and fragment in out, out
    return out


# ----------------------------------------------------------------- typical mistakes

def test_attention_mistakes(capsys):
    _fails_with(ex.check_softmax_attention, lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), -1) @ v,
                capsys, "is something dividing them")
    _fails_with(ex.check_softmax_attention,
                lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -2) @ v,
                capsys, "check the dim of your softmax")

    def unstable(q, k, v):
        e = torch.exp(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
        return (e / e.sum(-1, keepdim=True)) @ v

    _fails_with(ex.check_softmax_attention, unstable, capsys, "NaN or inf")
    _fails_with(ex.check_softmax_attention, lambda q, k, v: good_attention(q, k, v)[..., :1], capsys, "shape")
    _fails_with(ex.check_softmax_attention, lambda q, k, v: good_attention(q, k, v).tolist(), capsys,
                "should be a torch.Tensor")


def test_mask_mistakes(capsys):
    _fails_with(ex.check_causal_mask, lambda a, b: ~good_mask(a, b), capsys, "inverted")
    _fails_with(ex.check_causal_mask, lambda a, b: torch.tril(torch.ones(a, b, dtype=torch.bool), -1), capsys,
                "attend to itself")
    _fails_with(ex.check_causal_mask, lambda a, b: torch.tril(torch.ones(a, b, dtype=torch.bool)), capsys,
                "LAST L_q positions")
    _fails_with(ex.check_causal_mask, lambda a, b: good_mask(a, b).float(), capsys, "boolean tensor")


def test_merge_mistakes(capsys):
    def no_rescale(m_a, l_a, acc_a, m_b, l_b, acc_b):
        return torch.maximum(m_a, m_b), l_a + l_b, acc_a + acc_b

    def detour(m_a, l_a, acc_a, m_b, l_b, acc_b):  # right on paper, but e^{m} overflows for big scores
        m = torch.maximum(m_a, m_b)
        ca, cb, c = torch.exp(m_a), torch.exp(m_b), torch.exp(m)
        return m, (l_a * ca + l_b * cb) / c, (acc_a * ca[..., None] + acc_b * cb[..., None]) / c[..., None]

    def inconsistent_l(m_a, l_a, acc_a, m_b, l_b, acc_b):
        m, l, acc = good_merge(m_a, l_a, acc_a, m_b, l_b, acc_b)
        return m, 2 * l, 2 * acc

    def nan_on_empty(m_a, l_a, acc_a, m_b, l_b, acc_b):
        m = torch.maximum(m_a, m_b)
        ca, cb = torch.exp(m_a - m), torch.exp(m_b - m)
        l = l_a * ca + l_b * cb
        return m, l, (acc_a / l_a[..., None]) * (l_a * ca)[..., None] + acc_b * cb[..., None]

    def wrong_max(m_a, l_a, acc_a, m_b, l_b, acc_b):
        return (torch.minimum(m_a, m_b), *good_merge(m_a, l_a, acc_a, m_b, l_b, acc_b)[1:])

    _fails_with(ex.check_online_softmax_merge, no_rescale, capsys, "what must happen to them")
    _fails_with(ex.check_online_softmax_merge, detour, capsys, "scores of about ±1000 your statistics contain NaN")
    _fails_with(ex.check_online_softmax_merge, inconsistent_l, capsys, "l is not Σ exp(s − m)")
    _fails_with(ex.check_online_softmax_merge, nan_on_empty, capsys, "empty first block")
    _fails_with(ex.check_online_softmax_merge, wrong_max, capsys, "running maximum")
    _fails_with(ex.check_online_softmax_merge, lambda *a: good_merge(*a)[:2], capsys, "tuple (m, l, acc)")


def test_kv_cache_mistakes(capsys):
    def forgets_cache(q_t, k_t, v_t, cache):
        _, new = good_kv_step(q_t, k_t, v_t, cache)
        return good_attention(q_t, k_t, v_t), new

    def does_not_grow(q_t, k_t, v_t, cache):
        y, _ = good_kv_step(q_t, k_t, v_t, cache)
        return y, cache

    _fails_with(ex.check_kv_cache_step, forgets_cache, capsys, "The first step was right")
    _fails_with(ex.check_kv_cache_step, does_not_grow, capsys, "new_cache['k'] after 1 steps")
    _fails_with(ex.check_kv_cache_step, lambda *a: good_kv_step(*a)[0], capsys, "pair (out_t, new_cache)")


def test_flops_mistakes(capsys):
    out = _fails_with(ex.check_attention_flops, lambda n, d: n * n * d, capsys, "factor of 4")
    assert str(good_flops(7, 3)) not in out  # the hint never prints the answer
    _fails_with(ex.check_attention_flops, lambda n, d: 2 * n * n * d, capsys, "factor of 2")
    _fails_with(ex.check_attention_flops, lambda n, d: 4 * n * d, capsys, "how many scores")
    _fails_with(ex.check_attention_flops, lambda n, d: "many", capsys, "return a number")


def test_run_checker_reports_mismatch_text(capsys):
    def cases(fn):
        raise ex.Mismatch("a hint")

    assert run_checker("demo", lambda: None, cases) is False
    assert "❌ demo: a hint" in capsys.readouterr().out
