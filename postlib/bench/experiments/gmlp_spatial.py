"""What gMLP's spatial weights learn: a one-layer gMLP trained on a lagged copy; W before and after."""
from __future__ import annotations

SUMMARY = "gMLP spatial weights W (length x length) at init and after training on a lagged copy"
RESULT = "cpu_gmlp_spatial.json"


def add_arguments(parser) -> None:
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--lag", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)


def record(args) -> dict:
    from ...mixing.demo import band_mass, train_gmlp_lagged_copy
    result, w_init, w_trained = train_gmlp_lagged_copy(args.length, args.lag, args.d_model, args.steps, args.seed)
    rows = [dict(name="init", accuracy=None, band_mass=band_mass(w_init, args.lag)),
            dict(name="trained", accuracy=result.accuracy, band_mass=band_mass(w_trained, args.lag),
                 steps=args.steps, seconds=result.seconds, parameters=result.parameters)]
    return {"title": f"gMLP spatial weights on a lagged copy (lag {args.lag}, length {args.length})",
            "rows": rows, "length": args.length, "lag": args.lag,
            "W_init": w_init.tolist(), "W_trained": w_trained.tolist(),
            "notes": (f"one gMLP layer (d_model {args.d_model}, no MLP), AdamW lr 1e-2, {args.steps} steps of 32 "
                      "sequences; band_mass = share of |W| on the lag-th subdiagonal.")}
