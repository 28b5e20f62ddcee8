"""Arena: the recorded task arena, the scaling race, and a hybrid composer.

Widgets and layout only. The figures are ``postlib.viz.arena`` builders (the ones chapter
``07_lab/arena`` draws) over the recorded ``cpu_arena.json``, and ``postlib.viz.scaling`` over the
recorded race (``cpu_race.json``, and ``gpu_race.json`` when a GPU run exists); the page says so when
a file is missing.

The composer builds a ``postlib.models.SequenceModel`` from one mixer per layer, shows the stack and
its decoding state measured by stepping (``decoding_state_bytes``, measured once per stack for the whole
server and drawn against the tokens read with ``postlib.viz.arena.state_growth_figure``), and the recorded
arena result of that stack when the arena has one. Otherwise **Train** runs a quick MQAR run live
(``postlib.train.train_on_task``) in a background thread, one run at a time for the whole server
(``apps.measure.MEASURE_LOCK``), with a progress bar; its memory is checked first against the budget
(``composer_bytes``, bounded by a measurement in ``tests/apps/test_arena_page.py``).
"""
from __future__ import annotations

import functools
import threading

import panel as pn
import param
import torch

import postlib
from apps import measure
from apps.widgets import (Page, beside, budget_refusal, cached_figure, captioned_figure, controls, format_bytes,
                          guarded, memory_budget_bytes, release_memory, rule, section, stack)
from postlib import bench
from postlib.bench.experiments.arena import accuracy_table
from postlib.models import SequenceModel, needs_positions, stack_label
from postlib.tasks import associative_recall
from postlib.viz.arena import accuracy_table_figure, extrapolation_figure, state_growth_figure, state_recall_figure
from postlib.viz.scaling import scaling_figure

ARENA_FILE = "cpu_arena.json"
RACE_FILES = ("cpu_race.json", "gpu_race.json")
VIEWS = {"recall vs state (MQAR)": "mqar", "accuracy vs length (induction)": "induction",
         "all tasks (table)": "table"}
MAX_LAYERS = 4
# The composer's live run: small enough for tens of seconds on one CPU thread.
LIVE = dict(d_model=32, steps=150, batch=16, n_train=1024, n_test=128, pairs=4, keys=16, lr=3e-3, seed=0)
STATE_LENGTHS = (16, 64)                # the two lengths the composer's sentence compares
GROWTH_LENGTHS = (1, 4, 16, 64)         # the composer's state-growth figure
# Process-wide: a stack trained once is shown to every later session at once.
LIVE_RESULTS: dict[tuple, dict] = {}


def composer_bytes(stack: tuple[str, ...], d_model: int = LIVE["d_model"], batch: int = LIVE["batch"],
                   length: int = 2 * LIVE["pairs"] + LIVE["pairs"]) -> int | None:
    """An upper bound on the peak bytes of one live training step of ``stack`` (None if a mixer's estimate
    is unknown): each mixer's own forward+backward estimate, the backbone's activations (embedding, norms,
    4×-wide MLP: 24 activations of batch × length × d_model per layer), the parameters with their gradients
    and AdamW's two moments, and 8 MiB for the optimiser's and autograd's bookkeeping."""
    total, n_params = 0, 0
    for name in stack:
        mixer = postlib.build_mixer(name, d_model)
        need = bench.estimate_bytes(mixer, batch, length, torch.float32, "forward_backward")
        if need is None:
            return None
        total += need
        n_params += sum(p.numel() for p in mixer.parameters()) + 8 * d_model * d_model + 13 * d_model
    vocab = 2 * LIVE["keys"]
    n_params += 2 * vocab * d_model + length * d_model
    total += len(stack) * 24 * batch * length * d_model * 4 + 4 * n_params * 4 + 8 * 2 ** 20
    return int(total)


@functools.lru_cache(maxsize=256)
def stack_state_bytes(stack: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """``(length, bytes)`` of the decoding state ``stack`` holds after reading each of ``GROWTH_LENGTHS`` tokens,
    measured by stepping a freshly built model. Shapes only, so measured once per stack for the whole server."""
    model = SequenceModel(list(stack), vocab_size=2 * LIVE["keys"], d_model=LIVE["d_model"]).eval()
    with torch.no_grad():
        return tuple((n, model.decoding_state_bytes(torch.zeros(1, n, dtype=torch.long))) for n in GROWTH_LENGTHS)


def stack_state_figure(stack: tuple[str, ...]):
    """The composed stack's decoding state against the tokens it has read (a KV cache grows, a state does not)."""
    label = stack_label(list(stack))
    rows = [dict(name=label, length=n, state_bytes=b) for n, b in stack_state_bytes(stack)]
    return state_growth_figure(
        rows, title="What the composed stack keeps while decoding",
        caption=(f"Bytes of the decoding state of `{label}` (d_model {LIVE['d_model']}) after reading L tokens "
                 f"(L in {list(GROWTH_LENGTHS)}), measured by stepping its init_state/step through the sequence: "
                 "a softmax layer's KV cache grows with every token, a recurrent state stays flat"))


def recorded_arena() -> dict | None:
    try:
        return bench.load_results(ARENA_FILE)
    except FileNotFoundError:
        return None


class ArenaPage(Page):
    """Recorded accuracy against state size and length, the race curves, and a hybrid composer."""

    view = param.Selector(default="mqar", objects=list(VIEWS.values()))
    entrants = param.ListSelector(default=[], objects=[], doc="Entrants to show.")
    race_metric = param.Selector(default="time_ms", objects=["time_ms", "peak_mem_bytes"])
    n_layers = param.Integer(default=2, bounds=(2, MAX_LAYERS))
    layer_1 = param.Selector(default="mamba", objects=[])
    layer_2 = param.Selector(default="softmax", objects=[])
    layer_3 = param.Selector(default="mamba", objects=[])
    layer_4 = param.Selector(default="mamba", objects=[])
    running = param.Boolean(default=False)

    def __init__(self, **params):
        causal = postlib.list_mixers(causal=True)
        for i in range(1, MAX_LAYERS + 1):
            self.param[f"layer_{i}"].objects = list(causal)
        self.doc = recorded_arena()
        names = list(self.doc["stacks"]) if self.doc else []
        self.param.entrants.objects = names
        params.setdefault("entrants", names)
        super().__init__(**params)
        self.arena_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.arena_figure = captioned_figure(css_classes=["arena-recorded"])
        self.race_info = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.race_figure = captioned_figure(css_classes=["arena-race"], visible=False)
        self.stack_info = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["arena-stack"])
        self.state_figure = captioned_figure(css_classes=["arena-state"])
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(value=0, max=LIVE["steps"], visible=False,
                                               sizing_mode="stretch_width", bar_color="primary")
        self.train_button = pn.widgets.Button(label="Train a quick MQAR run", color="primary")
        self.train_button.on_click(self._on_train_click)
        self._thread: threading.Thread | None = None
        self._detached = False
        curdoc = pn.state.curdoc
        if curdoc is not None and curdoc.session_context is not None:
            pn.state.on_session_destroyed(self._on_session_destroyed)
        self.draw_arena()
        self.draw_race()
        self.compose()

    # ----- recorded arena ------------------------------------------------------------------------
    @param.depends("view", "entrants", watch=True)
    @guarded
    def draw_arena(self) -> None:
        if self.doc is None:
            self.arena_info.object = (f"No recorded arena in `{bench.RESULTS_DIR}` yet: record it with "
                                      "`python -m postlib.bench arena`.")
            self.arena_figure.visible = False
            return
        runs = self.doc.get("runs", [])     # a record joined from runs with one configuration and seeds
        added = ("" if len(runs) < 2 else
                 f"Added later with the same configuration and seeds: "
                 f"{', '.join(n for run in runs[1:] for n in run['entrants'])} "
                 f"({bench_provenance({'provenance': runs[1]['provenance']}).rstrip('.')}). ".replace("(Measured on ", "(on "))
        self.arena_info.object = (f"Recorded: {self.doc['title']}. {bench_provenance(self.doc)} {added}"
                                  f"Skipped: {', '.join(self.doc['skipped']) or 'none'}.")
        rows = tuple(frozen(r) for r in self.doc["rows"] if r.get("name") in self.entrants)
        if not rows:
            self.arena_figure.visible = False
            self.arena_info.object += " Pick at least one entrant."
            return
        prov = frozen(self.doc["provenance"])
        if self.view == "table":
            self.arena_figure.object = cached_figure(_table_figure, rows, prov)
        elif self.view == "mqar":
            self.arena_figure.object = cached_figure(_rows_figure, state_recall_figure, rows, prov)
        else:
            self.arena_figure.object = cached_figure(_rows_figure, extrapolation_figure, rows, prov)
        self.arena_figure.visible = True

    # ----- race -----------------------------------------------------------------------------------
    @param.depends("race_metric", watch=True)
    @guarded
    def draw_race(self) -> None:
        found = []
        for name in RACE_FILES:
            try:
                found.append((name, bench.load_results(name)))
            except FileNotFoundError:
                continue
        if not found:
            self.race_info.object = ("No recorded scaling race yet (`cpu_race.json`; `gpu_race.json` after a GPU "
                                     "run): record it with `python -m postlib.bench race`.")
            self.race_figure.visible = False
            return
        name, doc = found[-1]   # the GPU race when there is one
        missing = [n for n in RACE_FILES if n not in dict(found)]
        self.race_info.object = (f"Race from `{name}`: {doc.get('title', '')}. {bench_provenance(doc)}"
                                 + (f" Not recorded: {', '.join(missing)}." if missing else ""))
        rows = [r for r in doc["rows"] if r.get("status") == "ok"]
        self.race_figure.object = scaling_figure(rows, metric=self.race_metric, title="The scaling race",
                                                 provenance=doc.get("provenance"))
        self.race_figure.visible = True

    # ----- composer -------------------------------------------------------------------------------
    def stack(self) -> tuple[str, ...]:
        return tuple(getattr(self, f"layer_{i}") for i in range(1, self.n_layers + 1))

    @param.depends("n_layers", "layer_1", "layer_2", "layer_3", "layer_4", watch=True)
    @guarded
    def compose(self) -> None:
        stack = self.stack()
        sizes = dict(stack_state_bytes(stack))
        grows = sizes[STATE_LENGTHS[1]] - sizes[STATE_LENGTHS[0]]
        lines = [f"**Stack** ({len(stack)} layers, d_model {LIVE['d_model']}): "
                 + " → ".join(f"`{m}`" for m in stack),
                 f"Decoding state, measured by stepping: {sizes[STATE_LENGTHS[0]]:,} bytes after "
                 f"{STATE_LENGTHS[0]} tokens, {sizes[STATE_LENGTHS[1]]:,} after {STATE_LENGTHS[1]} "
                 + (f"(it grows by {grows / (STATE_LENGTHS[1] - STATE_LENGTHS[0]):,.0f} bytes per token: "
                    "a KV cache)." if grows else "(fixed: no layer keeps every token)."),
                 f"Absolute positions: {'yes (no order-aware layer)' if needs_positions(stack) else 'no'}."]
        recorded = self.recorded_result(stack)
        if recorded:
            lines.append("**Recorded arena result** for this stack: "
                         + ", ".join(f"{task} {100 * acc:.0f}%" for task, acc in recorded.items()) + ".")
        elif stack in LIVE_RESULTS:
            lines.append(live_sentence(LIVE_RESULTS[stack]))
        else:
            lines.append("No recorded result for this stack: press **Train** for a quick live MQAR run.")
        self.stack_info.object = "\n\n".join(lines)
        self.state_figure.object = cached_figure(stack_state_figure, stack)
        self.train_button.disabled = bool(recorded) or stack in LIVE_RESULTS or self.running

    def recorded_result(self, stack: tuple[str, ...]) -> dict | None:
        if self.doc is None:
            return None
        label = stack_label(list(stack))
        names = [n for n, s in self.doc["stacks"].items() if s == label]
        if not names:
            return None
        return accuracy_table(self.doc["rows"]).get(names[0])

    @guarded
    def _on_train_click(self, _event=None) -> None:
        self.train()

    def train(self, background: bool = True) -> None:
        """Train the composed stack on a quick MQAR live (refused over the memory budget)."""
        stack = self.stack()
        if self.running or stack in LIVE_RESULTS:
            return
        self.alert.clear()
        need = composer_bytes(stack)
        if self.refuse(budget_refusal(f"training `{stack_label(list(stack))}` live", need, memory_budget_bytes())):
            return
        self.running = True
        self.train_button.disabled = True
        self.progress.value, self.progress.visible = 0, True
        self.status.object = "Waiting for the server's measurement slot…"
        if background:
            self._thread = threading.Thread(target=self._train, args=(stack,), daemon=True, name="arena-train")
            self._thread.start()
        else:
            self._train(stack)

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _train(self, stack: tuple[str, ...]) -> None:
        from postlib.train import train_on_task
        error = None
        try:
            with measure.MEASURE_LOCK:   # one live run at a time for the whole server
                self._report(f"Training `{stack_label(list(stack))}` on MQAR live…")
                kw = dict(n_pairs=LIVE["pairs"], n_keys=LIVE["keys"], n_values=LIVE["keys"])
                x, y, vocab = associative_recall(LIVE["n_train"], seed=LIVE["seed"], **kw)
                xt, yt, _ = associative_recall(LIVE["n_test"], seed=LIVE["seed"] + 1000, **kw)
                result = train_on_task(list(stack), (x, y), (xt, yt), vocab, d_model=LIVE["d_model"],
                                       steps=LIVE["steps"], batch_size=LIVE["batch"], lr=LIVE["lr"],
                                       seed=LIVE["seed"], device="cpu",
                                       max_length=x.shape[1] if needs_positions(stack) else None,
                                       on_step=self._on_step)
                LIVE_RESULTS[stack] = dict(accuracy=result.accuracy, seconds=result.seconds, steps=result.steps,
                                           chance=1 / LIVE["keys"])
        except Exception as exc:  # noqa: BLE001 - shown in the page
            error = f"{type(exc).__name__}: {exc}"
        release_memory()
        if self._detached:
            return
        self.running = False
        self.progress.visible = False
        if error:
            self.alert.show(f"**Live training failed:** {error}")
            self.status.object = ""
        else:
            self.status.object = live_sentence(LIVE_RESULTS[stack])
        self.compose()

    def _on_step(self, done: int) -> None:
        if not self._detached:
            self.progress.value = done

    def _report(self, message: str) -> None:
        if not self._detached:
            self.status.object = message

    def _on_session_destroyed(self, session_context) -> None:
        self._detached = True

    # ----- layout ---------------------------------------------------------------------------------
    def __panel__(self):
        arena_settings = stack(
            pn.widgets.Select.from_param(self.param.view, options=VIEWS, name="View"),
            pn.widgets.MultiChoice.from_param(self.param.entrants, label="Entrants", sizing_mode="stretch_width"))
        layers = controls(*[pn.widgets.Select.from_param(self.param[f"layer_{i}"], label=f"layer {i}")
                            for i in range(1, MAX_LAYERS + 1)], basis_px=110)
        composer = stack(
            controls(pn.widgets.IntSlider.from_param(self.param.n_layers, label="layers"), basis_px=160),
            layers, section("Only the first *layers* selects are used."),
            self.train_button,
            pn.pane.Markdown(f"Memory budget per run: {format_bytes(memory_budget_bytes())}; a stack over it is "
                             "refused before anything is allocated.", styles={"font-size": "0.8em"},
                             sizing_mode="stretch_width"))
        intro = section(
            "# The arena\nEvery causal mixer, and the Jamba-like and Based-like hybrids, trained on the same "
            "tasks with the same budget (`python -m postlib.bench arena`): recall against the bytes of state "
            "each model keeps, induction heads beyond the training length, and the accuracy table.")
        return stack(
            intro, self.alert.pane, beside(arena_settings, stack(self.arena_info, self.arena_figure)),
            rule(), section("## The scaling race"),
            controls(pn.widgets.RadioButtonGroup.from_param(
                self.param.race_metric, options={"time": "time_ms", "peak memory": "peak_mem_bytes"}),
                basis_px=200),
            self.race_info, self.race_figure,
            rule(), section("## Hybrid composer\nPick one causal mixer per layer."),
            beside(composer, stack(self.refusal, self.stack_info, self.status, self.progress, self.state_figure)))


def live_sentence(result: dict) -> str:
    return (f"**Live MQAR run** (this server, {result['steps']} steps, d_model {LIVE['d_model']}, "
            f"{LIVE['pairs']} pairs): accuracy {100 * result['accuracy']:.0f}% (chance "
            f"{100 * result['chance']:.0f}%), trained in {result['seconds']:.0f} s. A quick run: noisy, not the "
            "recorded arena's budget.")


def bench_provenance(doc: dict) -> str:
    from postlib.viz import provenance_sentence
    return provenance_sentence(doc.get("provenance"))


def frozen(value):
    """A hashable copy of a row or provenance dict (the figure cache keys on its arguments)."""
    if isinstance(value, dict):
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    return value


def _thaw(row) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in row}


def _rows_figure(builder, rows, provenance):
    return builder([_thaw(r) for r in rows], provenance=_thaw(provenance))


def _table_figure(rows, provenance):
    return accuracy_table_figure(accuracy_table([_thaw(r) for r in rows]), provenance=_thaw(provenance))


PAGE = {"title": "Arena", "order": 95, "viewer": ArenaPage}
