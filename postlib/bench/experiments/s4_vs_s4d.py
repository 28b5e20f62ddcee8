"""S4 against its diagonal simplifications on a small memory task: does the NPLR correction matter?

S4 writes HiPPO-LegS as normal plus low rank, A = Λ − P P*, and pays for the rank-one term with a
Cauchy kernel and the Woodbury identity. DSS and S4D drop it. The S4D paper reports that this
costs little (Long Range Arena averages 86.09 for S4-LegS, 84.89 for S4D-LegS). Here four layers
are trained on the same task with the same backbone, optimiser, steps and seeds:

* ``S4 (NPLR)``            the ``s4`` mixer: Λ − P P*, Cauchy + Woodbury;
* ``S4, low-rank term dropped`` the same mixer with ``low_rank=False``: P = 0, everything else equal
  (the exact ablation of the correction);
* ``S4D-LegS``            the ``s4d`` mixer with LegS's eigenvalues (ZOH, B = 1, N/2 modes, 2·Re);
* ``S4D-Lin``             the ``s4d`` mixer with λ_n = −½ + iπn.

The task, :func:`delayed_copy`: random tokens, and the answer at position t is the token at
t − lag — a pure memory task that a time-invariant SSM can solve exactly (a kernel with a spike at
the lag), so it measures how well each parameterisation learns a long, sharp kernel.

    python -m postlib.bench s4-vs-s4d      # records postlib/bench/results/cpu_s4_vs_s4d.json
"""
from __future__ import annotations

import os
import statistics

import torch

from ..._checks import check_positive_int
from ._args import int_list

SUMMARY = "S4 (NPLR) vs S4 without its low-rank term vs S4D-LegS vs S4D-Lin on a delayed-copy task, several seeds"
RESULT = "cpu_s4_vs_s4d.json"
THREADS = 1          # small models: one thread is steadier on a shared CPU
MODELS = {"S4 (NPLR)": ("s4", {}), "S4, low-rank term dropped": ("s4", {"low_rank": False}),
          "S4D-LegS": ("s4d", {"init": "legs"}), "S4D-Lin": ("s4d", {"init": "lin"})}


def delayed_copy(n: int, length: int, lag: int, vocab: int, seed: int = 0):
    """``n`` sequences of ``length`` random tokens in 1..vocab−1; the target at t ≥ lag is the token at
    t − lag (−100, not scored, before). Returns (inputs, targets), int64 (n, length)."""
    for name, value in (("n", n), ("length", length), ("lag", lag), ("vocab", vocab)):
        check_positive_int(value, name)
    if lag >= length or vocab < 2:
        raise ValueError(f"need lag < length and vocab >= 2, got lag={lag}, length={length}, vocab={vocab}")
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, vocab, (n, length), generator=g)
    targets = torch.full_like(inputs, -100)
    targets[:, lag:] = inputs[:, :-lag]
    return inputs, targets


def add_arguments(parser) -> None:
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--lag", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=8)
    parser.add_argument("--train", type=int, default=2000, help="training sequences")
    parser.add_argument("--test", type=int, default=256, help="test sequences")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--state", type=int, default=16, help="N, the state size of every layer")
    parser.add_argument("--seeds", type=int_list, default=[1, 2, 3])


def compare(models=tuple(MODELS), *, length=64, lag=32, vocab=8, n_train=2000, n_test=256, steps=400, batch=32,
            lr=1e-2, d_model=32, layers=2, state=16, seeds=(1, 2, 3), device="cpu", progress=False) -> list[dict]:
    """One row per (model, seed): test accuracy, final loss, seconds, parameters and the loss curve."""
    from ...train import train_on_task

    train = delayed_copy(n_train, length, lag, vocab, seed=0)
    test = delayed_copy(n_test, length, lag, vocab, seed=1)
    rows = []
    for seed in seeds:
        for label in models:
            mixer, config = MODELS[label]
            r = train_on_task(mixer, train, test, vocab, d_model=d_model, n_layers=layers, steps=steps,
                              batch_size=batch, lr=lr, seed=seed, device=device,
                              mixer_config={"d_state": state, **config})
            rows.append(dict(name=label, mixer=mixer, config=config, seed=seed, accuracy=r.accuracy,
                             final_loss=r.losses[-1][1], seconds=r.seconds, parameters=r.parameters,
                             losses=r.losses, length=length, lag=lag, steps=steps, device=str(device), status="ok"))
            if progress:
                print(f"seed {seed} {label:28s} accuracy {100 * r.accuracy:5.1f}%  {r.seconds:.0f} s", flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per model: mean, min and max accuracy over the seeds, and the median training time."""
    out = []
    for label in dict.fromkeys(r["name"] for r in rows):
        acc = [r["accuracy"] for r in rows if r["name"] == label]
        out.append(dict(name=label, mean_accuracy=statistics.fmean(acc), min_accuracy=min(acc),
                        max_accuracy=max(acc), seeds=len(acc),
                        median_seconds=statistics.median(r["seconds"] for r in rows if r["name"] == label)))
    return out


def record(args) -> dict:
    load_before = os.getloadavg()[0]
    rows = compare(length=args.length, lag=args.lag, vocab=args.vocab, n_train=args.train, n_test=args.test,
                   steps=args.steps, batch=args.batch, lr=args.lr, d_model=args.d_model, layers=args.layers,
                   state=args.state, seeds=args.seeds, progress=not args.quiet)
    notes = (f"Delayed copy: {args.length} random tokens from {args.vocab - 1}, answer = the token {args.lag} steps "
             f"earlier; {args.train} training / {args.test} test sequences. Two layers of width {args.d_model}, "
             f"state size {args.state}, AdamW lr {args.lr} (one-cycle), {args.steps} steps of batch {args.batch}, "
             f"seeds {args.seeds}, {torch.get_num_threads()} torch thread(s). seconds is training time. Load average "
             f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run.")
    return {"title": "S4 vs S4 without its low-rank term vs S4D on delayed copy", "rows": rows, "notes": notes,
            "summary": summarise(rows)}
