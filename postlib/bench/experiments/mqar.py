"""Multi-query associative recall (MQAR, Zoology) for the kernel-attention part's mixers.

Each mixer is trained with ``postlib.train``'s one recipe on the same task (same data, steps, width,
seeds), and scored on held-out sequences: the accuracy on the queries. LoLA runs at several cache
sizes (window + sparse), so the record shows where it sits between linear and softmax attention.
The LoLA page reads the file; its live run is the operator-level probe, which needs no training.

    python -m postlib.bench mqar          # records postlib/bench/results/cpu_mqar.json
"""
from __future__ import annotations

import json

from ._args import int_list

SUMMARY = "MQAR accuracy after the same training: softmax, linear, performer, LoLA at several cache sizes"
RESULT = "cpu_mqar.json"
THREADS = 1
DEFAULT_RUNS = [["softmax", {}], ["linear", {}], ["performer", {"num_features": 32}],
                ["lola", {"window": 4, "sparse": 4}], ["lola", {"window": 4, "sparse": 12}],
                ["lola", {"window": 4, "sparse": 0, "eval_sparse": 12}]]


def add_arguments(parser) -> None:
    parser.add_argument("--pairs", type=int, default=6, help="key-value pairs per sequence")
    parser.add_argument("--keys", type=int, default=24, help="key (and value) vocabulary")
    parser.add_argument("--train", type=int, default=4000, help="training sequences")
    parser.add_argument("--test", type=int, default=512, help="held-out sequences")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--seeds", type=int_list, default=[0, 1], help="training seeds (comma-separated)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=json.loads, default=DEFAULT_RUNS,
                        help='JSON list of [mixer, config] pairs, e.g. \'[["lola", {"window": 4, "sparse": 4}]]\'')


def label(mixer: str, config: dict) -> str:
    """"lola (window 4, sparse 4)", "lola (window 4, sparse 0 → 12)", "performer (m = 32)", "softmax"."""
    if mixer == "lola":
        sparse = f"{config.get('sparse', 4)}" + (f" → {config['eval_sparse']}" if "eval_sparse" in config else "")
        return f"lola (window {config.get('window', 4)}, sparse {sparse})"
    if mixer == "performer" and "num_features" in config:
        return f"performer (m = {config['num_features']})"
    return mixer


def train_runs(runs, *, pairs, keys, train, test, steps, batch, lr, d_model, heads, seeds, device="cpu",
               progress=False) -> list[dict]:
    """Train every (mixer, config) of ``runs`` for every seed; one row per run with its test accuracy.

    A LoLA config may hold ``eval_sparse``: the model is trained with ``sparse`` cache slots and scored with
    ``eval_sparse`` (LoLA's paper adds its sparse cache to an already trained model, without training)."""
    import torch

    from ...tasks import associative_recall
    from ...train import masked_accuracy, train_on_task
    task = dict(n_pairs=pairs, n_keys=keys, n_values=keys)
    x, y, vocab = associative_recall(train, seed=0, **task)
    x_test, y_test, _ = associative_recall(test, seed=1, **task)
    rows = []
    for mixer, config in runs:
        train_config = {k: v for k, v in config.items() if k != "eval_sparse"}
        for seed in seeds:
            res = train_on_task(mixer, (x, y), (x_test, y_test), vocab, d_model=d_model, n_layers=2, steps=steps,
                                batch_size=batch, lr=lr, seed=seed, device=device, max_length=x.shape[1],
                                mixer_config={"n_heads": heads, **train_config})
            accuracy = float(res.accuracy)
            if "eval_sparse" in config:
                model = res.model.eval()
                for block in model.blocks:
                    block.mixer.sparse = int(config["eval_sparse"])
                with torch.no_grad():
                    xt, yt = x_test.to(device), y_test.to(device)
                    accs = [masked_accuracy(model(xt[i:i + 256]), yt[i:i + 256]) for i in range(0, len(xt), 256)]
                accuracy = sum(accs) / len(accs)                    # as train_on_task scores it
            rows.append({"name": label(mixer, config), "mixer": mixer, "config": json.dumps(config), "seed": seed,
                         "accuracy": float(accuracy), "steps": steps, "pairs": pairs, "length": int(x.shape[1]),
                         "seconds": res.seconds})                  # training time, timed by train_on_task
            if progress:
                print(f"{rows[-1]['name']:32s} seed {seed}: accuracy {res.accuracy:.1%}", flush=True)
    return rows


def record(args) -> dict:
    rows = train_runs(args.runs, pairs=args.pairs, keys=args.keys, train=args.train, test=args.test,
                      steps=args.steps, batch=args.batch, lr=args.lr, d_model=args.d_model, heads=args.heads,
                      seeds=args.seeds, device=args.device, progress=not args.quiet)
    return {"title": f"MQAR, {args.pairs} pairs, {args.steps} steps, d_model {args.d_model}", "rows": rows,
            "chance": 1 / args.keys}
