"""Every SSM checker accepts a correct answer, rejects a wrong one with a hint, and reports NotImplementedError."""
import numpy as np
import pytest
import torch

from postlib.exercises import ssm as ex


def _todo(*args):
    raise NotImplementedError


def test_bilinear(capsys):
    def right(A, B, dt):
        M = np.eye(len(A)) - dt / 2 * A
        return np.linalg.solve(M, np.eye(len(A)) + dt / 2 * A), np.linalg.solve(M, dt * B)
    assert ex.check_bilinear(right)
    assert not ex.check_bilinear(lambda A, B, dt: (np.eye(len(A)) + dt * A, dt * B))
    assert "Euler" in capsys.readouterr().out
    assert not ex.check_bilinear(_todo)
    assert "not implemented" in capsys.readouterr().out


def test_zoh_diagonal(capsys):
    assert ex.check_zoh_diagonal(lambda lam, dt: (torch.exp(dt * lam), (torch.exp(dt * lam) - 1) / lam))
    assert not ex.check_zoh_diagonal(lambda lam, dt: (torch.exp(dt * lam), dt * torch.ones_like(lam)))
    assert "Euler" in capsys.readouterr().out


def test_hippo_legs(capsys):
    def right(N):
        r = np.sqrt(2 * np.arange(N) + 1)
        return np.tril(-np.outer(r, r), -1) - np.diag(np.arange(N) + 1.0), r
    assert ex.check_hippo_legs(right)
    assert not ex.check_hippo_legs(lambda N: (right(N)[0].T, right(N)[1]))
    out = capsys.readouterr().out
    assert "❌" in out and ("transposed" in out or "diagonal" in out)


def test_scan_step():
    def right(x, u, delta, A, B, C):
        x = torch.exp(delta[..., None] * A) * x + delta[..., None] * B[:, None] * u[..., None]
        return x, (x * C[:, None]).sum(-1)
    assert ex.check_scan_step(right)
    assert not ex.check_scan_step(lambda x, u, d, A, B, C: (torch.exp(A) * x, x.sum(-1)))


def test_diagonal_kernel(capsys):
    assert ex.check_diagonal_kernel(lambda a, b, c, L: torch.stack([(c * a ** l * b).sum() for l in range(L)]))
    assert not ex.check_diagonal_kernel(lambda a, b, c, L: torch.stack([(c * a ** (l + 1) * b).sum() for l in range(L)]))
    assert "off by one" in capsys.readouterr().out


def test_combine(capsys):
    assert ex.check_combine(lambda e1, e2: (e2[0] * e1[0], e2[0] * e1[1] + e2[1]))
    assert not ex.check_combine(lambda e1, e2: (e1[0] * e2[0], e1[0] * e2[1] + e1[1]))
    assert "swapped" in capsys.readouterr().out


def test_masked_accuracy(capsys):
    def right(logits, targets):
        m = targets != -100
        return (logits.argmax(-1)[m] == targets[m]).double().mean().item()
    assert ex.check_masked_accuracy(right)
    assert not ex.check_masked_accuracy(lambda lg, t: (lg.argmax(-1) == t).double().mean().item())
    assert "every position" in capsys.readouterr().out


def test_legs_step(capsys):
    def right(c, f, k, A, B):
        N = len(c)
        return np.linalg.solve(np.eye(N) - A / (2 * k), (np.eye(N) + A / (2 * k)) @ c + B * f / k)
    assert ex.check_legs_step(right)
    assert not ex.check_legs_step(lambda c, f, k, A, B: right(c, f, 1, A, B) if k > 1 else right(c, f, k, A, B))
    assert "1/k" in capsys.readouterr().out
    assert not ex.check_legs_step(lambda c, f, k, A, B: c + (A @ c + B * f) / k)
    assert "Euler" in capsys.readouterr().out
    from postlib.ssm.hippo import hippo_online
    assert not ex.check_legs_step(lambda c, f, k, A, B: hippo_online("legs", len(c), [f], 1.0)[-1])
    assert "implement it yourself" in capsys.readouterr().out


def _woodbury(g, lam, p, q, b):
    R = 1 / (g - lam)
    return R * b - R * p * (q.conj() * R * b).sum() / (1 + (q.conj() * R * p).sum())


def test_woodbury_solve(capsys):
    assert ex.check_woodbury_solve(_woodbury)
    assert not ex.check_woodbury_solve(lambda g, lam, p, q, b: _woodbury(g, lam, p, q.conj(), b))
    assert "conjugated" in capsys.readouterr().out
    assert not ex.check_woodbury_solve(lambda g, lam, p, q, b: _woodbury(g, lam, -p, q, b))
    assert "sign" in capsys.readouterr().out

    def dense(g, lam, p, q, b):
        M = g * torch.eye(len(lam), dtype=torch.complex128) - torch.diag(lam) + p[:, None] * q.conj()[None, :]
        return torch.linalg.solve(M, b)
    assert not ex.check_woodbury_solve(dense)
    assert "implement it yourself" in capsys.readouterr().out


def _conv(x, w, bias):
    k = w.shape[-1]
    padded = torch.nn.functional.pad(x, (k - 1, 0))
    return torch.nn.functional.conv1d(padded, w[:, None], bias, groups=x.shape[1])


def test_causal_conv1d(capsys):
    assert ex.check_causal_conv1d(_conv)
    assert not ex.check_causal_conv1d(lambda x, w, b: _conv(x, w.flip(-1), b))
    assert "reversed" in capsys.readouterr().out
    def centred(x, w, b):                       # padding on both sides: outputs see the future
        k = w.shape[-1]
        padded = torch.nn.functional.pad(x, (k // 2, k - 1 - k // 2))
        return torch.nn.functional.conv1d(padded, w[:, None], b, groups=x.shape[1])
    assert not ex.check_causal_conv1d(centred)
    assert "❌" in capsys.readouterr().out


def test_copy_targets(capsys):
    def right(tokens, n_colors):
        sep = int((tokens == n_colors + 1).nonzero()[0])
        head = tokens[:sep]
        return head[(head >= 1) & (head <= n_colors)]
    assert ex.check_copy_targets(right)
    assert not ex.check_copy_targets(lambda t, n: right(t, n).flip(0))
    assert "order" in capsys.readouterr().out


def test_questions_accept_the_answer_and_hint_the_classic_slips(capsys):
    import math
    from postlib.exercises import ssm_questions as q
    assert q.check_euler_max_step(1 / 9.25) and q.check_legs_ramp_c1(math.sqrt(3) / 6)
    assert q.check_s4d_decay_steps(200) and q.check_expanded_state_gib(1.5) and q.check_guess_all_right(1 / 256)
    capsys.readouterr()
    assert not q.check_euler_max_step(2 / 9.25)
    assert "twice" in capsys.readouterr().out
    assert not q.check_guess_all_right(100 / 256)
    assert "percentage" in capsys.readouterr().out
    assert not q.check_expanded_state_gib(3.0)
    assert "4 bytes" in capsys.readouterr().out
    for check, right in ((q.check_which_rule_unstable, "a"), (q.check_which_measure, "c"),
                         (q.check_which_form_generation, "b"), (q.check_why_no_fft, "b"), (q.check_why_lti_fails, "b")):
        assert check(right)
        assert not check("b" if right != "b" else "a")


def test_predictions_grade_what_the_run_shows(capsys):
    from postlib.exercises import ssm_questions as q
    cases = ((q.predict_bilinear_halving, "b", 4.0, 2.0), (q.predict_legs_doubling, "b", 37.0, 2.0),
             (q.predict_cauchy_exact, "a", 1e-14, None), (q.predict_block_causality, "b", [0] * 10 + [1] * 5, [1] * 15))
    for predict, right, measured, contradicting in cases:
        predict.reset()
        predict(right)
        assert predict.reveal(measured)
        predict.reset()
        if contradicting is not None:
            with pytest.raises(AssertionError, match="not the stored answer"):
                predict.reveal(contradicting)
            predict.reset()
