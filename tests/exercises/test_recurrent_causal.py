"""Recurrent-causal checkers: correct answers pass, typical mistakes fail with their hint, stubs never raise,
and calling postlib's own solution fails."""
import math

import pytest
import torch

from postlib.exercises import recurrent_causal as ex
from postlib.exercises.questions import answer_hash


# ----------------------------------------------------------------- correct solutions (written from the equations)
def good_decay(gamma, length):
    t = torch.arange(length, dtype=gamma.dtype)
    dist = t[:, None] - t[None, :]
    return torch.where(dist >= 0, gamma[:, None, None] ** dist.clamp(min=0), torch.zeros(()))


def good_recurrent(q, k, v, gamma):
    S = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1])
    outs = []
    for t in range(q.shape[2]):
        S = gamma[None, :, None, None] * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append(torch.einsum("bhd,bhdv->bhv", q[:, :, t], S))
    return torch.stack(outs, 2)


def good_chunkwise(q, k, v, gamma, chunk_size, cross_shift=1):
    B, H, L, _ = q.shape
    S = q.new_zeros(B, H, q.shape[-1], v.shape[-1])
    g = gamma[None, :, None, None]
    outs = []
    for start in range(0, L, chunk_size):
        qc, kc, vc = (x[:, :, start:start + chunk_size] for x in (q, k, v))
        n = qc.shape[2]
        i = torch.arange(n, dtype=q.dtype)
        dist = i[:, None] - i[None, :]
        D = torch.where(dist >= 0, g ** dist.clamp(min=0), torch.zeros(()))
        inner = ((qc @ kc.transpose(-1, -2)) * D) @ vc
        cross = (qc @ S) * g ** (i + cross_shift)[:, None]
        outs.append(inner + cross)
        S = g ** n * S + (kc * g ** (n - 1 - i)[:, None]).transpose(-1, -2) @ vc
    return torch.cat(outs, 2)


def good_rel_shift(x):
    *batch, L, K = x.shape
    padded = torch.cat([x.new_zeros(*batch, L, 1), x], dim=-1)
    return padded.reshape(*batch, K + 1, L)[..., 1:, :].reshape(*batch, L, K)


def good_ema_kernel(alpha, delta, beta, eta, length):
    t = torch.arange(length, dtype=alpha.dtype)
    return ((eta * alpha * beta)[..., None] * (1 - alpha * delta)[..., None] ** t).sum(1)


def good_reach(length, segment_length, memory_length, n_layers):
    reach = []
    for p in range(length):
        e = p
        for _ in range(n_layers):
            e = max(0, (e // segment_length) * segment_length - memory_length)
        reach.append(p - e)
    return reach


def stub(*args):
    raise NotImplementedError


CHECKERS = [(ex.check_decay_matrix, good_decay), (ex.check_recurrent_retention, good_recurrent),
            (ex.check_chunkwise_retention, good_chunkwise), (ex.check_rel_shift, good_rel_shift),
            (ex.check_ema_kernel, good_ema_kernel), (ex.check_dependency_reach, good_reach)]


@pytest.mark.parametrize("checker,solution", CHECKERS)
def test_correct_solution_passes(checker, solution, capsys):
    assert checker(solution) is True, capsys.readouterr().out
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("checker", [c for c, _ in CHECKERS])
def test_stub_is_not_implemented_yet(checker, capsys):
    assert checker(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


def _fails_with(checker, fn, capsys, fragment):
    assert checker(fn) is False
    out = capsys.readouterr().out
    assert "❌" in out and fragment in out, out


def test_calling_the_library_fails(capsys):
    from postlib.recurrent.retention import decay_matrix, retention
    _fails_with(ex.check_decay_matrix, lambda g, n: decay_matrix(g, n), capsys, "implement it yourself")
    _fails_with(ex.check_recurrent_retention, lambda q, k, v, g: retention(q, k, v, g, backend="recurrent"),
                capsys, "implement it yourself")
    _fails_with(ex.check_chunkwise_retention, lambda q, k, v, g, c: retention(q, k, v, g, chunk_size=c),
                capsys, "implement it yourself")


def test_decay_mistakes(capsys):
    _fails_with(ex.check_decay_matrix, lambda g, n: good_decay(g, n).transpose(-1, -2), capsys, "transposed")
    def symmetric(g, n):
        t = torch.arange(n, dtype=g.dtype)
        return g[:, None, None] ** (t[:, None] - t[None, :]).abs()
    _fails_with(ex.check_decay_matrix, symmetric, capsys, "exactly 0")
    _fails_with(ex.check_decay_matrix, lambda g, n: good_decay(g, n) * g[:, None, None], capsys, "off by one")


def test_recurrent_mistakes(capsys):
    def read_before(q, k, v, gamma):
        S = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1])
        outs = []
        for t in range(q.shape[2]):
            outs.append(torch.einsum("bhd,bhdv->bhv", q[:, :, t], S))
            S = gamma[None, :, None, None] * S + k[:, :, t, :, None] * v[:, :, t, None, :]
        return torch.stack(outs, 2)

    def decay_after(q, k, v, gamma):
        S = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1])
        outs = []
        for t in range(q.shape[2]):
            S = gamma[None, :, None, None] * (S + k[:, :, t, :, None] * v[:, :, t, None, :])
            outs.append(torch.einsum("bhd,bhdv->bhv", q[:, :, t], S))
        return torch.stack(outs, 2)

    _fails_with(ex.check_recurrent_retention, read_before, capsys, "before adding the current token")
    _fails_with(ex.check_recurrent_retention, decay_after, capsys, "applied to the new token too")


def test_chunkwise_mistakes(capsys):
    def wrong_cross(q, k, v, gamma, chunk_size):          # γ^i instead of γ^(i+1) for the carried state
        return good_chunkwise(q, k, v, gamma, chunk_size, cross_shift=0)

    def quadratic(q, k, v, gamma, chunk_size):
        return good_chunkwise(q, k, v, gamma, q.shape[2])     # one chunk = the whole L × L matrix

    _fails_with(ex.check_chunkwise_retention, wrong_cross, capsys, "first chunk is right")
    _fails_with(ex.check_chunkwise_retention, quadratic, capsys, "an L × L matrix is")


def test_rel_shift_ema_and_reach_mistakes(capsys):
    _fails_with(ex.check_rel_shift, lambda x: x.clone(), capsys, "nothing moved")
    _fails_with(ex.check_rel_shift, lambda x: x.flip(-1), capsys, "pad one zero column")

    def mega_pytorch_damping(alpha, delta, beta, eta, length):
        t = torch.arange(length, dtype=alpha.dtype)
        return ((eta * alpha * beta)[..., None] * ((1 - alpha) * delta)[..., None] ** t).sum(1)

    def no_eta(alpha, delta, beta, eta, length):
        return good_ema_kernel(alpha, delta, beta, torch.ones_like(eta), length)

    _fails_with(ex.check_ema_kernel, mega_pytorch_damping, capsys, "δ damps α inside the decay")
    _fails_with(ex.check_ema_kernel, no_eta, capsys, "its own weight η")
    _fails_with(ex.check_dependency_reach, lambda L, S, M, N: good_reach(L, S, M, 1), capsys, "right for one layer")
    _fails_with(ex.check_dependency_reach, lambda L, S, M, N: list(range(L)), capsys, "differs at positions")
    _fails_with(ex.check_dependency_reach, lambda L, S, M, N: [0], capsys, "one per position")


def test_questions(capsys):
    assert ex.check_half_life(math.log(0.5) / math.log(1 - 2 ** -8)) is True
    assert ex.check_half_life(256) is False
    assert "1/(1 − γ)" in capsys.readouterr().out
    assert ex.check_half_life(...) is False
    assert answer_hash("recurrent_causal.which_retention_form", "c") == "b28a4280607c3244"
    assert ex.check_which_retention_form("c") is True
    assert ex.check_which_retention_form("a") is False
    assert answer_hash("recurrent_causal.vanilla_copy", "a") == "dfa96bf4e13025c1"
    assert ex._copy_option(0.06) == "a" and ex._copy_option(0.5) == "b" and ex._copy_option(0.99) == "c"
