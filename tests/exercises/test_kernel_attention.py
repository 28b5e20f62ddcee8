"""Kernel-attention checkers: correct answers pass, typical mistakes fail, stubs never raise."""
import math

import pytest

import torch
import torch.nn.functional as F

from postlib.exercises import kernel_attention as ex


def phi(x):
    return F.elu(x) + 1


def good_linear(q, k, v):
    kv = torch.einsum("bhjd,bhjv->bhdv", phi(k), v)
    z = phi(k).sum(2)
    return torch.einsum("bhid,bhdv->bhiv", phi(q), kv) / (torch.einsum("bhid,bhd->bhi", phi(q), z)[..., None] + 1e-6)


def good_rnn(q, k, v):
    B, H, L, D = q.shape
    S = q.new_zeros(B, H, D, v.shape[-1])
    z = q.new_zeros(B, H, D)
    outs = []
    for t in range(L):
        S = S + phi(k[:, :, t])[..., None] * v[:, :, t, None, :]
        z = z + phi(k[:, :, t])
        outs.append(torch.einsum("bhd,bhdv->bhv", phi(q[:, :, t]), S)
                    / (torch.einsum("bhd,bhd->bh", phi(q[:, :, t]), z)[..., None] + 1e-6))
    return torch.stack(outs, 2)


def good_chunk(pq, pk, v, S, z):
    sim = (pq @ pk.transpose(-1, -2)).tril()
    out = (sim @ v + pq @ S) / (sim.sum(-1) + torch.einsum("bhid,bhd->bhi", pq, z) + 1e-6)[..., None]
    return out, S + pk.transpose(-1, -2) @ v, z + pk.sum(2)


def good_features(x, omega):
    return torch.exp(x @ omega.T - 0.5 * (x * x).sum(-1, keepdim=True)) / math.sqrt(omega.shape[0])


def good_cost(L, d):
    return 2 * L * L * d, 2 * L * d * d


def stub(*args):
    raise NotImplementedError


def test_correct_answers_pass():
    assert ex.check_linear_attention(good_linear)
    assert ex.check_linear_attention_rnn(good_rnn)
    assert ex.check_chunk_update(good_chunk)
    assert ex.check_positive_features(good_features)
    assert ex.check_kernel_trick_cost(good_cost)


def test_typical_mistakes_fail_with_a_hint(capsys):
    unnormalised = lambda q, k, v: torch.einsum("bhid,bhdv->bhiv", phi(q), torch.einsum("bhjd,bhjv->bhdv", phi(k), v))  # noqa: E731
    assert not ex.check_linear_attention(unnormalised)
    assert "divided" in capsys.readouterr().out
    assert not ex.check_linear_attention_rnn(good_linear)              # non-causal answer
    assert "non-causal" in capsys.readouterr().out
    assert not ex.check_chunk_update(lambda pq, pk, v, S, z: (good_chunk(pq, pk, v, S, z)[0], S, z))
    assert "S_new" in capsys.readouterr().out
    assert not ex.check_chunk_update(lambda pq, pk, v, S, z: ((pq @ S) / (pq @ z)[..., None], *good_chunk(pq, pk, v, S, z)[1:]))
    assert not ex.check_positive_features(lambda x, w: torch.exp(x @ w.T) / math.sqrt(w.shape[0]))
    assert "biased" in capsys.readouterr().out
    assert not ex.check_kernel_trick_cost(lambda L, d: (2 * L * L * d, L * d))


def test_stubs_report_not_implemented(capsys):
    for checker in (ex.check_linear_attention, ex.check_linear_attention_rnn, ex.check_chunk_update,
                    ex.check_positive_features, ex.check_kernel_trick_cost):
        assert checker(stub) is False
    assert capsys.readouterr().out.count("not implemented yet") == 5


def test_rnn_hints_name_the_actual_mistake(capsys):
    """Reading S and z before adding token t gets the "before" hint; a state that does not accumulate (first
    token right, later ones wrong) gets the "accumulating" hint — never the other way round."""
    def read_before_update(q, k, v):
        B, H, L, D = q.shape
        S, z, outs = q.new_zeros(B, H, D, v.shape[-1]), q.new_zeros(B, H, D), []
        for t in range(L):
            outs.append(torch.einsum("bhd,bhdv->bhv", phi(q[:, :, t]), S)
                        / (torch.einsum("bhd,bhd->bh", phi(q[:, :, t]), z)[..., None] + 1e-6))
            S = S + phi(k[:, :, t])[..., None] * v[:, :, t, None, :]
            z = z + phi(k[:, :, t])
        return torch.stack(outs, 2)

    def no_accumulation(q, k, v):
        S = phi(k)[..., :, None] * v[..., None, :]
        num = torch.einsum("bhtd,bhtdv->bhtv", phi(q), S)
        return num / ((phi(q) * phi(k)).sum(-1, keepdim=True) + 1e-6)

    assert not ex.check_linear_attention_rnn(read_before_update)
    out = capsys.readouterr().out
    assert "before" in out and "accumulating" not in out
    assert not ex.check_linear_attention_rnn(no_accumulation)
    out = capsys.readouterr().out
    assert "accumulating" in out and "*before*" not in out


def test_questions(capsys):
    right = 32 * 32 * (128 * 128 + 128) * 2 / 2**20
    assert ex.check_linear_state_mib(right) and ex.check_linear_state_mib(32.0)       # z is 1% of the state
    assert not ex.check_linear_state_mib(2 * right) and "2 bytes" in capsys.readouterr().out
    assert not ex.check_linear_state_mib(right / 32) and "every head of every layer" in capsys.readouterr().out
    assert ex.check_which_stabiliser("b")
    assert not ex.check_which_stabiliser("a") and "future" in capsys.readouterr().out
    p = ex.predict_favor_average
    p.reset()
    try:
        p("a")
        stalls = [1.0] * 9 + [0.42] * 100 + [0.40]
        assert p.reveal(stalls) is False and "unbiased" in capsys.readouterr().out
        p.reset()
        p("b")
        assert p.reveal(stalls) is True
        p.reset()
        with pytest.raises(AssertionError, match="not the stored answer"):
            p.reveal([1.0] * 9 + [0.4] * 100 + [0.05])      # a run that converged would contradict the key
    finally:
        p.reset()
