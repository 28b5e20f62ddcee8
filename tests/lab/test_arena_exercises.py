"""The arena chapter's checkers accept a right answer, reject typical mistakes with a hint, and say 'not implemented'."""
import torch

from postlib.exercises import lab_arena as ex


def _todo(*args):
    raise NotImplementedError


def _nbytes(state):
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_nbytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(_nbytes(v) for v in state)
    return 0


def test_state_bytes(capsys):
    assert ex.check_state_bytes(_nbytes)
    elements = lambda s: (s.numel() if isinstance(s, torch.Tensor) else  # noqa: E731
                          sum(map(elements, s.values())) if isinstance(s, dict) else
                          sum(map(elements, s)) if isinstance(s, (list, tuple)) else 0)
    assert not ex.check_state_bytes(elements)
    assert "element_size" in capsys.readouterr().out
    assert not ex.check_state_bytes(_todo)
    assert "not implemented" in capsys.readouterr().out


def test_state_bytes_refuses_postlib_own_solution(capsys):
    from postlib.models import state_nbytes
    assert not ex.check_state_bytes(state_nbytes)
    assert "implement it yourself" in capsys.readouterr().out.lower()


def test_induction_rule(capsys):
    def right(tokens, trigger):
        p = (tokens[:-1] == trigger).nonzero()[0].item()
        return tokens[p + 1].item()
    assert ex.check_induction_rule(right)
    assert not ex.check_induction_rule(lambda tokens, trigger: tokens[-2].item())
    assert "previous occurrence" in capsys.readouterr().out


def _evaluate(tokens):
    stack = []
    for t in tokens:
        if t in ("MAX", "MIN", "SM"):
            stack.append((t, []))
        elif t == "]":
            op, args = stack.pop()
            value = max(args) if op == "MAX" else min(args) if op == "MIN" else sum(args) % 10
            if not stack:
                return value
            stack[-1][1].append(value)
        else:
            stack[-1][1].append(int(t))


def test_listops_value(capsys):
    assert ex.check_listops_value(_evaluate)

    def no_modulo(tokens):
        return sum(int(t) for t in tokens if t.isdigit()) if tokens[0] == "SM" else _evaluate(tokens)
    assert not ex.check_listops_value(no_modulo)
    assert "modulo 10" in capsys.readouterr().out


def test_jamba_stack(capsys):
    def right(n):
        return ["softmax" if i == n // 2 else "mamba" for i in range(n)]
    assert ex.check_jamba_stack(right)
    assert not ex.check_jamba_stack(lambda n: ["softmax"] + ["mamba"] * (n - 1))
    assert "n_layers // 2" in capsys.readouterr().out


def test_questions(capsys):
    assert ex.check_linear_state_bytes(8704)
    assert not ex.check_linear_state_bytes(8192)
    assert "normaliser" in capsys.readouterr().out
    assert not ex.check_linear_state_bytes(4352)
    assert "one layer" in capsys.readouterr().out
    assert ex.check_which_state_grows("b")
    assert not ex.check_which_state_grows("a")
