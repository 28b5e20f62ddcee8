"""Associative recall (MQAR) for gMLP, ConvMixer, RWKV and softmax attention through the same backbone."""
from __future__ import annotations

from ._args import str_list

SUMMARY = "MQAR accuracy: gmlp, convmixer, rwkv vs softmax (same backbone, same recipe)"
RESULT = "cpu_mixing_recall.json"


def add_arguments(parser) -> None:
    parser.add_argument("--mixers", type=str_list, default=["softmax", "rwkv", "gmlp", "convmixer"])
    parser.add_argument("--pairs", type=int, default=6, help="key-value pairs per sequence")
    parser.add_argument("--keys", type=int, default=24, help="distinct keys (= values); chance is 1/keys")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seeds", type=str_list, default=["0"])


def record(args) -> dict:
    from ...mixing.demo import recall_comparison
    rows = []
    for seed in args.seeds:
        for row in recall_comparison(args.mixers, n_pairs=args.pairs, n_keys=args.keys, d_model=args.d_model,
                                     n_layers=args.layers, steps=args.steps, seed=int(seed)):
            rows.append(dict(row, seed=int(seed)))
    return {"title": f"MQAR, {args.pairs} pairs: which token mixers can recall?", "rows": rows,
            "notes": (f"postlib.train.train_on_task: d_model {args.d_model}, {args.layers} layers, {args.steps} "
                      "steps, batch 64, AdamW 3e-3 one-cycle, learned positions, softmax with 2 heads; 4000 "
                      f"training / 256 test sequences; accuracy on the query positions. Chance = 1/{args.keys}.")}
