"""The task arena: every causal mixer, and two hybrids, trained on the same four synthetic tasks.

    python -m postlib.bench arena                      # the recorded run -> results/cpu_arena.json
    python -m postlib.bench arena --workers 1          # the same numbers, one process (twice as long on 2 cores)
    python -m postlib.bench arena --profile quick --mixers softmax,mamba,jamba-like --tasks mqar

Tasks (generators in ``postlib.tasks``), each isolating one ability:

* ``selective_copying`` — copy the coloured tokens among noise (Mamba §4.1.1): content-based memory;
* ``mqar`` — multi-query associative recall at several widths, so each entrant appears at several
  *state sizes* (Zoology, Arora et al. 2023, Fig. 2: accuracy against recurrent-state bytes);
* ``induction`` — induction heads trained at one length and tested at longer ones (Mamba Table 2:
  trained at 256, tested up to 1M);
* ``listops`` — a small ListOps-like expression evaluation (hierarchical structure).

Entrants: every causal mixer registered when the arena runs (``list_mixers(causal=True)``), so new
mixers join by registering, plus the hybrids of ``postlib.models.hybrid_stack``: ``jamba-like``
(Mamba layers and one softmax layer) and ``based-like`` (linear attention + sliding window; skipped,
with the reason recorded, where the ``longformer`` mixer is not registered). Every entrant gets the
same backbone, width, depth, optimiser, steps and seeds (``postlib.train.train_on_task``); only the
mixers change. Absolute positions are given to stacks without an order-aware layer
(``postlib.models.needs_positions``), as Jamba drops them when Mamba layers are present.

The state of an entrant is *measured*: ``SequenceModel.decoding_state_bytes`` steps one test
sequence through the model's real ``init_state``/``step`` and counts the bytes of the state it then
holds (a KV cache grows with the sequence; a recurrent state does not).
"""
from __future__ import annotations

from ...models import HYBRIDS, hybrid_stack, needs_positions, stack_label
from ...registry import list_mixers
from ...tasks import associative_recall, induction_heads, listops, selective_copying
from ...train import train_on_task
from ._args import int_list, str_list

SUMMARY = "task arena: every causal mixer and two hybrids on selective copying, MQAR, induction, ListOps"
RESULT = "cpu_arena.json"
THREADS = 1
TASKS = ("selective_copying", "mqar", "induction", "listops")

# The recorded run and a quick one (the book's live cell, the tests). Every entrant trains with the same
# numbers. The full profile, 18 entrants (108 trainings), takes about 7.5 min wall on an idle 2-core machine
# with two workers (about 14 min of training; lola alone 3, its step being a Python loop over tokens); the
# record's "wall_s" is the measured wall time. Under load the same run took several times longer.
PROFILES = {
    "full": dict(d_model=32, n_layers=2, steps=200, batch=32, lr=3e-3, n_train=2000, n_test=256, seeds=[0],
                 copy_length=16, copy_memorize=4, copy_colors=4,
                 mqar_pairs=6, mqar_keys=24, mqar_d_models=[16, 32, 64],
                 induction_vocab=8, induction_train_length=64, induction_test_lengths=[64, 128, 256, 512, 1024],
                 induction_test=64, listops_length=32, listops_depth=3),
    "quick": dict(d_model=16, n_layers=2, steps=30, batch=16, lr=3e-3, n_train=256, n_test=64, seeds=[0],
                  copy_length=12, copy_memorize=3, copy_colors=4,
                  mqar_pairs=4, mqar_keys=16, mqar_d_models=[16, 32],
                  induction_vocab=8, induction_train_length=32, induction_test_lengths=[32, 128],
                  induction_test=16, listops_length=20, listops_depth=2),
}


def entrants(names=None, n_layers: int = 2) -> tuple[dict[str, list[str]], dict[str, str]]:
    """``({label: mixer stack}, {label: reason skipped})`` for the arena.

    ``names`` picks entrants by label (a causal mixer's name, ``"jamba-like"``, ``"based-like"``);
    default: every causal mixer registered now and both hybrids.
    """
    causal = list_mixers(causal=True)
    labels = list(names) if names is not None else causal + [f"{h}-like" for h in HYBRIDS]
    stacks, skipped = {}, {}
    for label in labels:
        if label in causal:
            stacks[label] = [label] * n_layers
        elif label.endswith("-like") and label[:-5] in HYBRIDS:
            try:
                stacks[label] = hybrid_stack(label[:-5], n_layers)
            except ValueError as err:       # e.g. the sliding-window mixer is not registered yet
                skipped[label] = str(err)
        else:
            raise ValueError(f"unknown arena entrant {label!r}: expected a causal mixer {causal} or one of "
                             f"{[f'{h}-like' for h in HYBRIDS]}")
    return stacks, skipped


def _datasets(task: str, cfg: dict, seed: int) -> list[dict]:
    """The training/test sets of one task: one dict per configuration (MQAR: one per width)."""
    n, m = cfg["n_train"], cfg["n_test"]
    if task == "selective_copying":
        kw = dict(length=cfg["copy_length"], n_memorize=cfg["copy_memorize"], n_colors=cfg["copy_colors"])
        tr, te = selective_copying(n, seed=seed, **kw), selective_copying(m, seed=seed + 1000, **kw)
        return [dict(train=tr, tests={tr[0].shape[1]: te[:2]}, d_model=cfg["d_model"], chance=1 / cfg["copy_colors"])]
    if task == "mqar":
        kw = dict(n_pairs=cfg["mqar_pairs"], n_keys=cfg["mqar_keys"], n_values=cfg["mqar_keys"])
        tr, te = associative_recall(n, seed=seed, **kw), associative_recall(m, seed=seed + 1000, **kw)
        return [dict(train=tr, tests={tr[0].shape[1]: te[:2]}, d_model=d, chance=1 / cfg["mqar_keys"])
                for d in cfg["mqar_d_models"]]
    if task == "induction":
        v = cfg["induction_vocab"]
        tr = induction_heads(n, cfg["induction_train_length"], v, seed=seed)
        tests = {length: induction_heads(cfg["induction_test"], length, v, seed=seed + 1000 + length)[:2]
                 for length in cfg["induction_test_lengths"]}
        return [dict(train=tr, tests=tests, d_model=cfg["d_model"], chance=1 / v)]
    if task == "listops":
        tr = listops(n, cfg["listops_length"], cfg["listops_depth"], seed=seed)
        te = listops(m, cfg["listops_length"], cfg["listops_depth"], seed=seed + 1000)
        majority = te[1][:, -1].bincount().max().item() / m
        return [dict(train=tr, tests={tr[0].shape[1]: te[:2]}, d_model=cfg["d_model"], chance=majority)]
    raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")


def _evaluate(model, inputs, targets) -> float:
    """Accuracy over the scored positions, in batches of at most 8192 tokens (attention at L = 1024)."""
    import torch
    batch = max(1, 8192 // inputs.shape[1])

    from ...train import masked_accuracy
    with torch.no_grad():
        scored = [(masked_accuracy(model(inputs[i:i + batch]), targets[i:i + batch]),
                   int((targets[i:i + batch] != -100).sum())) for i in range(0, len(inputs), batch)]
    return sum(a * w for a, w in scored) / sum(w for _, w in scored)


def run_entrant(label: str, stack: list[str], task: str, cfg: dict, seed: int) -> list[dict]:
    """Train ``stack`` on ``task`` (every configuration of it) and return one row per test length."""
    rows = []
    for data in _datasets(task, cfg, seed):
        train_x, train_y, vocab = data["train"]
        longest = max(data["tests"])
        max_length = longest if needs_positions(stack) else None
        result = train_on_task(stack, (train_x, train_y), next(iter(data["tests"].values())), vocab,
                               d_model=data["d_model"], n_layers=len(stack), steps=cfg["steps"],
                               batch_size=cfg["batch"], lr=cfg["lr"], seed=seed, device="cpu",
                               max_length=max_length)
        model = result.model
        train_length, first = train_x.shape[1], next(iter(data["tests"]))
        state_bytes = model.decoding_state_bytes(train_x[:1])
        for length, (x, y) in data["tests"].items():
            accuracy = result.accuracy if length == first else _evaluate(model, x, y)
            rows.append({"name": label, "stack": stack_label(stack), "task": task, "seed": seed,
                         "d_model": data["d_model"], "n_layers": len(stack), "train_length": train_length,
                         "length": length, "accuracy": accuracy, "chance": data["chance"],
                         "state_bytes": state_bytes, "parameters": result.parameters,
                         "positions": "absolute" if max_length else "none",
                         "seconds": result.seconds, "status": "ok"})
    return rows


def _job(args) -> list[dict]:
    """One (entrant, task, seed) in a worker process: one torch thread, like the sequential run."""
    import torch
    torch.set_num_threads(THREADS)
    return run_entrant(*args)


def default_workers() -> int:
    """One worker process per core the process may use (2 on the recording machine)."""
    import os
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _longest_first(jobs: list[tuple], seconds: dict | None) -> list[tuple]:
    """Jobs ordered by the training seconds a previous record measured, longest first, so that two workers
    finish together (a long entrant started last would leave one core idle); unknown jobs go first."""
    if not seconds:
        return list(jobs)
    return sorted(jobs, key=lambda j: -seconds.get((j[0], j[1]), float("inf")))


def run_arena(names=None, tasks=TASKS, profile: str = "full", seeds=None, steps: int | None = None,
              progress: bool = False, overrides: dict | None = None, workers: int = 1,
              previous: dict | None = None) -> dict:
    """Run the arena and return ``{"rows", "skipped", "config"}`` (what ``record`` saves).

    ``workers`` > 1 trains that many (entrant, task, seed) jobs at once in separate processes, one torch
    thread each, scheduled longest first by ``previous`` (a recorded arena's rows). The rows come back in
    the sequential order, with the same accuracies: every job seeds its own data and weights.
    Deterministic: the same arguments give the same accuracies (``tests/lab/test_arena.py``).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    cfg = dict(PROFILES[profile], **(overrides or {}))
    if steps is not None:
        cfg["steps"] = steps
    if seeds is not None:
        cfg["seeds"] = list(seeds)
    tasks = list(tasks)
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {t!r}")
    stacks, skipped = entrants(names, cfg["n_layers"])
    jobs = [(label, task, seed) for seed in cfg["seeds"] for task in tasks for label in stacks]
    rows = [{"name": label, "task": task, "status": "skipped", "reason": reason}
            for label, reason in skipped.items() for task in tasks]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc=f"arena ({workers} worker{'s' * (workers > 1)})", unit="run")
    results: dict[tuple, list[dict]] = {}
    if workers == 1 or len(jobs) < 2:
        for label, task, seed in jobs:
            if bar is not None:
                bar.set_postfix_str(f"{label} / {task}")
            results[(label, task, seed)] = run_entrant(label, stacks[label], task, cfg, seed)
            if bar is not None:
                bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        seconds = {}
        for r in (previous or {}).get("rows", []):
            if r.get("status") == "ok" and r.get("length") == r.get("train_length"):
                key = (r["name"], r["task"])
                seconds[key] = seconds.get(key, 0.0) + r.get("seconds", 0.0)
        # spawn: a fresh interpreter per worker (forking a process that already ran torch can deadlock)
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_job, (label, stacks[label], task, cfg, seed)): (label, task, seed)
                       for label, task, seed in _longest_first(jobs, seconds)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if bar is not None:
                    bar.set_postfix_str("{} / {}".format(*futures[future][:2]))
                    bar.update()
    if bar is not None:
        bar.close()
    for job in jobs:
        rows.extend(results[job])
    return {"rows": rows, "skipped": skipped, "config": cfg, "stacks": {k: stack_label(v) for k, v in stacks.items()}}


def accuracy_table(rows: list[dict]) -> dict[str, dict[str, float]]:
    """``{entrant: {column: accuracy}}`` with one column per task at its training length (MQAR: its widest
    model) and the induction accuracy at the longest test length; mean over seeds."""
    cells: dict[tuple[str, str], list[float]] = {}
    ok = [r for r in rows if r.get("status") == "ok"]
    widest = max((r["d_model"] for r in ok if r["task"] == "mqar"), default=None)
    longest = max((r["length"] for r in ok if r["task"] == "induction"), default=None)
    for r in ok:
        columns = []
        if r["task"] == "mqar":
            if r["d_model"] == widest:
                columns.append(f"mqar (d={widest})")
        elif r["task"] == "induction":
            if r["length"] == r["train_length"]:
                columns.append(f"induction (L={r['length']})")
            if r["length"] == longest and longest != r["train_length"]:
                columns.append(f"induction (L={longest})")
        else:
            columns.append(r["task"])
        for c in columns:
            cells.setdefault((r["name"], c), []).append(r["accuracy"])
    table: dict[str, dict[str, float]] = {}
    for (name, column), values in cells.items():
        table.setdefault(name, {})[column] = sum(values) / len(values)
    return table


def add_arguments(parser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full",
                        help="sizes: 'full' (the recorded run) or 'quick' (seconds per entrant)")
    parser.add_argument("--mixers", type=str_list, default=None,
                        help="comma-separated entrants: causal mixers and/or jamba-like, based-like (default: all)")
    parser.add_argument("--tasks", type=str_list, default=list(TASKS), help=f"subset of {','.join(TASKS)}")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the profile's)")
    parser.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: the profile's)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes training at once, one thread each (default: one per core)")


def record(args) -> dict:
    from ..results_io import RESULTS_DIR, load_results
    workers = args.workers or default_workers()
    try:                                # the last record's times schedule the longest jobs first
        previous = load_results(RESULTS_DIR / RESULT)
    except (FileNotFoundError, ValueError):
        previous = None
    out = run_arena(args.mixers, args.tasks, args.profile, seeds=None if args.seeds is None else args.seeds,
                    steps=args.steps, progress=not args.quiet, workers=workers, previous=previous)
    cfg = out["config"]
    title = (f"Task arena ({args.profile}): {len(out['stacks'])} entrants, d_model={cfg['d_model']}, "
             f"{cfg['n_layers']} layers, {cfg['steps']} steps of batch {cfg['batch']}")
    # The command's wall time is saved by ``python -m postlib.bench`` (``wall_s``).
    return {"title": title, "rows": out["rows"], "skipped": out["skipped"], "config": cfg,
            "stacks": out["stacks"], "table": accuracy_table(out["rows"]),
            "run": {"workers": workers, "threads_per_worker": THREADS,
                    "trainings": sum(1 for r in out["rows"] if r.get("status") == "ok" and r["length"] == r["train_length"])}}
