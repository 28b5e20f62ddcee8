"""Hybrid stacks in the shared backbone: a list of mixers, one per layer (issue 10 §3)."""
import pytest
import torch

from postlib import list_mixers
from postlib.models import SequenceModel, hybrid_stack, needs_positions, state_nbytes
from postlib.train import train_on_task

CAUSAL = list_mixers(causal=True)


def _step_all(model, tokens):
    state = model.init_state(tokens.shape[0])
    logits = []
    for t in range(tokens.shape[1]):
        out, state = model.step(tokens[:, t], state)
        logits.append(out)
    return torch.stack(logits, dim=1), state


STACKS = [hybrid_stack("jamba", 4), hybrid_stack("jamba", 2), ["mamba", "softmax", "s4d", "linear"],
          CAUSAL, list(reversed(CAUSAL))]


@pytest.mark.parametrize("stack", STACKS, ids=["+".join(s) for s in STACKS])
@pytest.mark.parametrize("length", [1, 7, 12])
def test_hybrid_step_equals_forward(stack, length):
    torch.manual_seed(len(stack) + length)
    model = SequenceModel(stack, vocab_size=11, d_model=16, max_length=16).double().eval()
    tokens = torch.randint(0, 11, (2, length))
    with torch.no_grad():
        full = model(tokens)
        stepped, state = _step_all(model, tokens)
    assert full.shape == stepped.shape == (2, length, 11)
    torch.testing.assert_close(stepped, full, rtol=1e-7, atol=1e-9)
    assert state["position"] == length and len(state["layers"]) == len(stack)


def test_hybrid_layers_are_the_listed_mixers_and_train():
    stack = hybrid_stack("jamba", 4)
    assert stack == ["mamba", "mamba", "softmax", "mamba"]
    model = SequenceModel(stack, vocab_size=7, d_model=16)
    assert [type(b.mixer).__name__ for b in model.blocks] == ["MambaMixer", "MambaMixer",
                                                              "SoftmaxAttentionMixer", "MambaMixer"]
    assert model.mixer_name == "mamba+mamba+softmax+mamba" and len(model.blocks) == 4
    # per-layer configs reach their layer
    model = SequenceModel(["mamba", "softmax"], vocab_size=7, d_model=16,
                          mixer_config=[{"d_state": 4}, {"n_heads": 2}])
    assert model.blocks[1].mixer.n_heads == 2
    x = torch.randint(0, 7, (64, 9))
    r = train_on_task(stack, (x, x), (x, x), 7, d_model=16, steps=2, batch_size=4, device="cpu")
    assert r.mixer == "mamba+mamba+softmax+mamba" and 0.0 <= r.accuracy <= 1.0


def test_hybrid_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match=r"mixer\[1\] = 'mambo' is not a registered mixer"):
        SequenceModel(["mamba", "mambo"], vocab_size=5)
    with pytest.raises(ValueError, match="non-empty list"):
        SequenceModel([], vocab_size=5)
    with pytest.raises(TypeError, match=r"mixer\[0\] must be a mixer name"):
        SequenceModel([3, "softmax"], vocab_size=5)
    with pytest.raises(ValueError, match="n_layers=3 but the mixer list has 2 layers"):
        SequenceModel(["mamba", "softmax"], vocab_size=5, n_layers=3)
    noncausal = list_mixers(causal=False)[0]
    with pytest.raises(ValueError, match=rf"'{noncausal}' \(layer 1\) is not causal"):
        SequenceModel(["mamba", noncausal], vocab_size=5, task="lm")
    with pytest.raises(ValueError, match="list of 2 dicts"):
        SequenceModel(["mamba", "softmax"], vocab_size=5, mixer_config=[{}])
    model = SequenceModel(["mamba", "softmax"], vocab_size=5, d_model=8)
    with pytest.raises(ValueError, match="tokens must have length >= 1"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="kind must be one of"):
        hybrid_stack("griffin")
    with pytest.raises(ValueError, match="n_layers must be >= 2"):
        hybrid_stack("jamba", 1)
    with pytest.raises(TypeError, match="init_state"):
        model.step(torch.zeros(2, dtype=torch.long), None)


def test_based_stack_uses_the_sliding_window_or_says_it_is_missing():
    if "longformer" in list_mixers():
        assert hybrid_stack("based", 4) == ["linear", "longformer", "linear", "longformer"]
    else:
        with pytest.raises(ValueError, match="needs the sliding-window mixer 'longformer'"):
            hybrid_stack("based", 4)


def test_decoding_state_bytes_are_measured_from_the_real_state():
    d, length = 16, 10
    tokens = torch.randint(0, 5, (1, length))
    softmax = SequenceModel(["softmax", "softmax"], vocab_size=5, d_model=d).eval()
    # a KV cache: keys and values of every token, two layers, fp32
    assert softmax.decoding_state_bytes(tokens) == 2 * 2 * length * d * 4
    mamba = SequenceModel(["mamba", "mamba"], vocab_size=5, d_model=d).eval()
    fixed = mamba.decoding_state_bytes(tokens)
    assert fixed == mamba.decoding_state_bytes(torch.randint(0, 5, (1, 3 * length))) > 0   # fixed size
    assert state_nbytes({"a": torch.zeros(3), "b": [torch.zeros(2, dtype=torch.float64), 7]}) == 3 * 4 + 2 * 8
    assert needs_positions(["softmax", "linear"]) and not needs_positions(hybrid_stack("jamba", 2))


def test_train_on_task_runs_ten_steps():
    # torch's OneCycleLR divided by zero at pct_start * steps == 1 (steps=10 with pct_start 0.1)
    x = torch.randint(0, 5, (32, 6))
    r = train_on_task("s4d", (x, x), (x, x), 5, d_model=8, steps=10, batch_size=4, device="cpu")
    assert r.steps == 10 and len(r.losses) >= 2
