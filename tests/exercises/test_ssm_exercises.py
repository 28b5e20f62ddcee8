"""Every SSM checker accepts a correct answer, rejects a wrong one with a hint, and reports NotImplementedError."""
import numpy as np
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
