"""A small, seeded training loop that finishes in about a minute on a laptop CPU.

It trains ``postlib.models.SequenceModel`` on one of ``postlib.tasks`` and
reports accuracy on the scored positions (targets != -100). Every chapter's
"paper vs ours" experiment goes through ``train_on_task`` so the recipe is
identical for every mixer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ._checks import check_positive_int
from .models import SequenceModel
from .tasks import IGNORE


def seed_everything(seed: int = 0) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    mixer: str
    accuracy: float
    losses: list = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    parameters: int = 0
    model: object = field(default=None, repr=False, compare=False)   # the trained SequenceModel (eval mode)


def masked_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of scored positions (targets != -100) predicted exactly."""
    mask = targets != IGNORE
    if mask.sum() == 0:
        raise ValueError("targets has no scored positions (all are -100)")
    pred = logits.argmax(dim=-1)
    return (pred[mask] == targets[mask]).float().mean().item()


def sequence_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


def train_on_task(mixer, train_data, test_data, vocab_size: int, *, d_model: int = 64, n_layers: int | None = None,
                  steps: int = 300, batch_size: int = 32, lr: float = 3e-3, seed: int = 0, device=None,
                  max_length: int | None = None, mixer_config: dict | None = None, progress: bool = False,
                  log_every: int = 10, on_step=None) -> TrainResult:
    """Train a language model with ``mixer`` on (inputs, targets) and return test accuracy.

    ``mixer`` is a name or a list of names, one per layer (a hybrid; see ``postlib.models``);
    ``n_layers`` defaults to 2 for a name and to the list's length for a list.
    ``train_data`` and ``test_data`` are (inputs, targets) pairs from ``postlib.tasks``.
    ``on_step(steps_done)``, if given, is called after every step (a dashboard's progress bar).
    """
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    seed_everything(seed)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    x_train, y_train = (t.to(device) for t in train_data)
    x_test, y_test = (t.to(device) for t in test_data)
    model = SequenceModel(mixer, vocab_size, d_model=d_model, n_layers=n_layers, task="lm",
                          max_length=max_length, mixer_config=mixer_config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    # torch's OneCycleLR divides by zero when pct_start * steps == 1 exactly (steps=10): warm up a bit longer there
    pct_start = 0.1 if steps != 10 else 0.15
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=pct_start)
    g = torch.Generator(device="cpu").manual_seed(seed)
    losses = []
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc=f"train {model.mixer_name}", leave=False)
    start = time.perf_counter()
    model.train()
    for step in iterator:
        idx = torch.randint(0, x_train.shape[0], (batch_size,), generator=g).to(device)
        loss = sequence_loss(model(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            losses.append((step, loss.item()))
        if on_step is not None:
            on_step(step + 1)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accs = [masked_accuracy(model(x_test[i:i + 256]), y_test[i:i + 256]) for i in range(0, len(x_test), 256)]
    return TrainResult(model.mixer_name, float(sum(accs) / len(accs)), losses, steps, seconds, model.num_parameters(), model)
