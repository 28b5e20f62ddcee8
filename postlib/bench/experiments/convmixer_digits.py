"""ConvMixer vs a softmax patch-Transformer of about the same size on scikit-learn's 8x8 digits."""
from __future__ import annotations

SUMMARY = "2-D ConvMixer vs a same-size softmax patch-Transformer on the 8x8 digits: accuracy, curves, time"
RESULT = "cpu_convmixer_digits.json"


def add_arguments(parser) -> None:
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop a model early after this much training (default: all epochs, so the result "
                             "does not depend on the machine's speed)")
    parser.add_argument("--seed", type=int, default=0)


def record(args) -> dict:
    from ...mixing.demo import digits_comparison
    results = digits_comparison(epochs=args.epochs, seconds=args.seconds, seed=args.seed)
    rows = [dict(name=r.name, accuracy=r.accuracy, parameters=r.parameters, seconds=r.seconds, steps=r.steps,
                 epochs=len(r.curve)) for r in results]
    curves = {r.name: [dict(epoch=e, seconds=s, train_loss=loss, test_accuracy=acc) for e, s, loss, acc in r.curve]
              for r in results}
    return {"title": "8x8 digits: ConvMixer vs softmax patch-Transformer (same patch embedding and head)",
            "rows": rows, "curves": curves,
            "notes": ("1797 digits, 25% held out (seed 0); patch 2 -> 4x4 tokens; ConvMixer h=48 d=4 k=3 with "
                      "BatchNorm; Transformer d_model 32, 2 pre-norm blocks (registered causal softmax mixer, "
                      "4 heads, MLP x1), learned positions; AdamW lr 3e-3 cosine, batch 64, "
                      f"{args.epochs} epochs each" + (f" (at most {args.seconds:g} s)" if args.seconds else "") + ".")}
