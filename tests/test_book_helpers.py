"""postlib.book: sizes that follow the device and Triton, figures with captions, glue, claims, source
listings, explore() in both settings, the static renderer; viz.core.frames_figure."""
import os
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from postlib import book
from postlib.book import interactive as explore_module
from postlib.book import figures, runtime
from postlib.viz.core import frames_figure

ROOT = Path(__file__).resolve().parent.parent


def _bars(height=1.0, label="a"):
    fig = go.Figure(go.Bar(x=[label], y=[height]))
    fig.update_layout(title=f"h={height}")
    return fig


@pytest.fixture
def real_run(monkeypatch):
    for name in (book.SMOKE_ENV, book.PROFILE_ENV, book.BOOK_BUILD_ENV):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------ renderer and static files

def test_static_renderer_emits_html_without_a_cdn():
    name = book.register_renderer()
    bundle = pio.renderers[name].to_mimebundle(_bars().to_dict())
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and "cdn.plot.ly" not in html and "<script src" not in html
    assert set(bundle) == {"text/html"}


def test_install_static_copies_plotly_and_the_figures_script_once_it_exists(tmp_path, monkeypatch):
    from postlib.book import render
    from postlib.viz import FIGURES_JS
    assert render.FIGURES_JS == FIGURES_JS.resolve()          # the script postlib.viz ships
    script = tmp_path / "postlib-figures.js"
    monkeypatch.setattr(render, "FIGURES_JS", script)
    copied = book.install_static(tmp_path / "static")
    assert [Path(p).name for p in copied] == ["plotly.min.js"]          # tolerated: not written yet
    script.write_text("// responsive figures\n")
    copied = book.install_static(tmp_path / "static")
    assert [Path(p).name for p in copied] == ["plotly.min.js", "postlib-figures.js"]
    assert (tmp_path / "static" / "postlib-figures.js").read_text() == "// responsive figures\n"


# ------------------------------------------------------------------ profiles, device, Triton

def test_every_profile_has_matching_cpu_gpu_keys_and_smoke_overrides_of_the_same_type():
    assert {"baseline", "ssm", "kernel", "lowrank"} <= set(book.PROFILES)
    for name, profile in book.PROFILES.items():
        assert set(profile["cpu"]) == set(profile["gpu"]), name
        for key, value in profile["smoke"].items():
            for kind in ("cpu", "gpu"):
                assert type(value) is type(profile[kind][key]), (name, key, kind)
            if isinstance(value, list):
                assert value, (name, key)


def test_sizes_kind_smoke_and_errors(real_run, monkeypatch):
    cpu = book.sizes("baseline", "cpu")
    assert cpu["bench_lengths"] and max(cpu["bench_lengths"]) <= max(book.sizes("baseline", "gpu")["bench_lengths"])
    smoke = book.sizes("baseline", "gpu", smoke=True)
    assert smoke["bench_repeats"] == book.PROFILES["baseline"]["smoke"]["bench_repeats"]
    assert smoke["bench_d_model"] == book.PROFILES["baseline"]["gpu"]["bench_d_model"]   # shapes stay
    monkeypatch.setenv(book.SMOKE_ENV, "1")
    assert book.sizes("baseline", "cpu") == {**cpu, **book.PROFILES["baseline"]["smoke"]}
    monkeypatch.setenv(book.PROFILE_ENV, "gpu")
    assert book.device_kind() == "gpu"
    monkeypatch.setenv(book.PROFILE_ENV, "tpu")
    with pytest.raises(ValueError, match="POSTLIB_PROFILE must be one of"):
        book.device_kind()
    with pytest.raises(ValueError, match="chapter must be one of"):
        book.sizes("no-such-chapter")
    with pytest.raises(ValueError, match="kind must be one of"):
        book.sizes("baseline", "tpu")


@pytest.fixture
def fresh_triton(monkeypatch):
    """A process where triton is installed but not imported yet, and TRITON_INTERPRET unset."""
    import postlib.kernels as kernels
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    monkeypatch.setattr(runtime, "_installed", lambda name: True)
    monkeypatch.setattr(kernels, "triton_available", lambda: True)
    return monkeypatch


def test_on_a_cuda_machine_triton_compiles_and_the_interpreter_stays_off(fresh_triton):
    mode, why = runtime.triton_support(cuda=True)
    assert mode == "compiled" and "compiles" in why
    assert "TRITON_INTERPRET" not in os.environ


def test_on_a_cpu_the_interpreter_is_switched_on_before_triton_is_imported(fresh_triton):
    mode, _ = runtime.triton_support(cuda=False)
    assert mode == "interpreter" and os.environ["TRITON_INTERPRET"] == "1"


def test_triton_imported_before_setup_cannot_be_interpreted(fresh_triton):
    fresh_triton.setitem(sys.modules, "triton", object())
    mode, why = runtime.triton_support(cuda=False)
    assert mode is None and "before setup()" in why and "TRITON_INTERPRET" not in os.environ


def test_without_triton_a_triton_cell_says_it_is_skipped(fresh_triton, capsys):
    import postlib.kernels as kernels
    fresh_triton.setattr(runtime, "_installed", lambda name: False)
    fresh_triton.setattr(kernels, "triton_available", lambda: False)
    mode, why = runtime.triton_support(cuda=False)
    assert mode is None and why == runtime.NO_TRITON
    profile = runtime.Profile({}, name=None, kind="cpu", smoke=False, device="cpu", triton=mode, triton_note=why)
    assert profile.can_run_triton("the kernel check") is False
    out = capsys.readouterr().out
    assert "Skipped here: the kernel check" in out and "not installed" in out


def test_setup_returns_sizes_with_device_and_triton(real_run, monkeypatch):
    monkeypatch.setattr(runtime, "cuda_available", lambda: True)
    monkeypatch.setattr(runtime, "triton_support", lambda cuda: ("compiled", "compiles") if cuda else (None, "-"))
    profile = book.setup("ssm")
    assert profile.device == "cuda" and profile.kind == "gpu" and profile.triton == "compiled"
    assert profile["copy_steps"] == book.PROFILES["ssm"]["gpu"]["copy_steps"] and not profile.smoke
    assert profile.can_run_triton() and "device cuda" in profile.describe() and "gpu sizes" in repr(profile)
    monkeypatch.setenv(book.PROFILE_ENV, "cpu")
    monkeypatch.setenv(book.SMOKE_ENV, "1")
    forced = book.setup("ssm")
    assert forced.kind == "cpu" and forced.device == "cuda" and forced.smoke
    assert forced["copy_steps"] == book.PROFILES["ssm"]["smoke"]["copy_steps"]
    assert book.setup() == {}


def test_setup_in_book_build_selects_the_static_renderer(monkeypatch):
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    before = pio.renderers.default
    try:
        assert book.setup("baseline")["bench_lengths"]
        assert pio.renderers.default == book.RENDERER
    finally:
        pio.renderers.default = before


def test_a_page_without_triton_runs_its_cpu_path(tmp_path):
    """The no-Triton smoke mode's blocker, in a fresh interpreter: setup() reports Triton missing."""
    from postlib.book.run import BLOCK_TRITON
    code = BLOCK_TRITON + (
        "\ntry:\n    import triton\nexcept ModuleNotFoundError as e:\n    print('blocked:', 'blocked' in str(e))\n"
        "from postlib.book import setup\np = setup('ssm')\nprint(p.triton, p.can_run_triton('x'))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TRITON_INTERPRET", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120).stdout
    assert "blocked: True" in out and "None False" in out and "Skipped here: x" in out


# ------------------------------------------------------------------ figure, glue, claim

@pytest.fixture
def glued(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    return calls


def test_figure_glues_the_figure_and_its_builder_caption_in_the_book(glued):
    fig = _bars()
    fig.update_layout(meta={"caption": "L = 5, measured on cpu"})
    book.figure("bars", fig)
    (name, html, display), (cap_name, caption, cap_display) = glued
    assert name == "bars" and cap_name == "bars-caption" and not display and not cap_display
    assert "Plotly.newPlot" in html._repr_html_() and "cdn.plot.ly" not in html._repr_html_()
    assert caption.data == "L = 5, measured on cpu"
    book.figure("nothing", None)        # explore() in a live notebook returns None
    assert len(glued) == 2
    with pytest.raises(ValueError, match="name must be"):
        book.figure("two words", fig)


def test_figure_outside_the_book_displays_the_figure_and_its_caption(real_run, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = _bars()
    fig.update_layout(meta={"caption": "a caption"})
    book.figure("bars", fig)
    assert shown[0] is fig and shown[1].data == "*a caption*"
    shown.clear()
    book.figure("bars", _bars())       # no builder caption (yet): only the figure
    assert len(shown) == 1 and book.caption_of(_bars()) == ""


def test_glue_in_the_book_and_outside(glued, monkeypatch, capsys):
    import numpy as np
    import torch
    book.glue("err", 1.5e-13)
    book.glue(speedup=np.float64(12.4), n=torch.tensor(3))     # stored as plain numbers: {glue:text} parses them
    assert [(n, v, d) for n, v, d in glued] == [("err", 1.5e-13, False), ("speedup", 12.4, False), ("n", 3, False)]
    assert type(glued[1][1]) is float and type(glued[2][1]) is int
    monkeypatch.delenv(book.BOOK_BUILD_ENV)
    book.glue(speedup=12.4, n=3)
    assert capsys.readouterr().out.strip() == "speedup = 12.4 · n = 3"
    with pytest.raises(ValueError, match="at least one"):
        book.glue()
    with pytest.raises(ValueError, match="name must be"):
        book.glue("a:b", 1)


def test_claim_asserts_in_a_real_run_and_reports_in_a_smoke_run(real_run, monkeypatch, capsys):
    assert book.claim(2 > 1, "two beats one") is True
    with pytest.raises(AssertionError, match="claim does not hold: S6 beats S4D"):
        book.claim(False, "S6 beats S4D")
    with pytest.raises(ValueError, match="message"):
        book.claim(True, "")
    monkeypatch.setenv(book.SMOKE_ENV, "1")
    assert book.claim(False, "S6 beats S4D") is False
    assert "[smoke run] claim not held (not enforced): S6 beats S4D" in capsys.readouterr().err


# ------------------------------------------------------------------ source listings

def test_show_source_drops_the_docstring_and_names_file_and_lines():
    from postlib.attention import softmax_attention
    full, bare = book.show_source(softmax_attention), book.show_source(softmax_attention, docstring=False)
    assert full.source.startswith("def softmax_attention(") and '"""' in full.source
    assert '"""' not in bare.source and "return torch.matmul" in bare.source
    assert bare.path == "postlib/attention/softmax.py" and bare.first_line < bare.last_line
    assert "postlib.attention.softmax.softmax_attention" in repr(bare)


def test_show_source_of_a_method_dedents_it():
    from postlib.attention.mixers import SoftmaxAttentionMixer
    listing = book.show_source(SoftmaxAttentionMixer._step)
    assert listing.source.startswith("def _step(") and listing.qualname == "SoftmaxAttentionMixer._step"


def test_show_source_reads_a_triton_kernel_without_importing_it():
    listing = book.show_source("postlib.kernels.selective_scan:_selective_scan_fwd")
    assert listing.source.startswith("@triton.jit\ndef _selective_scan_fwd(")
    assert listing.n_lines > book.source.COLLAPSE_AFTER and listing.collapsed
    html = listing._repr_html_()
    assert html.startswith('<details class="postlib-listing">') and "lines)" in html
    # one block per line, wrapped lines hang 4 columns right of their own indentation
    assert html.count('class="postlib-line"') == listing.n_lines
    body = listing.source.split("\n")[1]
    assert f"padding-left:{len(body) - len(body.lstrip()) + 4}ch" in html.split('class="postlib-line"')[2]
    with pytest.raises(ValueError, match="no definition 'nope'"):
        book.show_source("postlib.kernels.selective_scan:nope")
    with pytest.raises(ValueError, match="no Python source file"):
        book.show_source("postlib.no_such_module:x")


def test_show_source_html_uses_theme_classes_in_the_book_and_inline_colours_elsewhere(real_run, monkeypatch):
    from postlib.attention import softmax_attention
    listing = book.show_source(softmax_attention, collapsed=False)
    assert 'style="' in listing._repr_html_() and listing._repr_html_().startswith('<div class="postlib-listing">')
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    assert 'class="k"' in listing._repr_html_() and 'style="color' not in listing._repr_html_()


# ------------------------------------------------------------------ explore and frames

def test_frames_figure_has_a_frame_and_slider_step_per_value():
    fig = frames_figure(_bars, "height", [1.0, 2.0, 3.0], label="h")
    assert len(fig.frames) == 3 and len(fig.layout.sliders[0].steps) == 3
    assert [f.data[0].y[0] for f in fig.frames] == [1.0, 2.0, 3.0]
    assert fig.layout.updatemenus  # the play button
    with pytest.raises(ValueError, match="must not be empty"):
        frames_figure(_bars, "height", [])
    with pytest.raises(ValueError, match="different number of traces"):
        frames_figure(lambda n: go.Figure([go.Bar(y=[1])] * n), "n", [1, 2])


def test_explore_is_a_framed_figure_in_the_static_book(monkeypatch):
    monkeypatch.setenv(book.BOOK_BUILD_ENV, "1")
    fig = book.explore(_bars, {"height": [1.0, 2.0], "label": ["a", "b"]})
    assert isinstance(fig, go.Figure) and len(fig.frames) == 2
    assert fig.frames[1].data[0].x[0] == "a"   # later controls stay at their first value
    with pytest.raises(ValueError, match="controls"):
        book.explore(_bars, {})


def test_explore_builds_widgets_in_a_live_kernel(real_run, monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    monkeypatch.setattr(explore_module, "widgets_available", lambda: True)
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    calls = []

    def builder(height=1.0, label="a"):
        calls.append((height, label))
        return _bars(height, label)

    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: None)
    assert book.explore(builder, {"height": [1.0, 2.0], "label": ["a", "b"]}) is None
    (box,) = shown
    slider, dropdown = box.children[:2]
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(dropdown, widgets.Dropdown)
    slider.value = 2.0
    dropdown.value = "b"
    assert calls[0] == (1.0, "a") and calls[-1] == (2.0, "b")


def test_figures_module_is_what_the_package_exports():
    assert book.figure is figures.figure and book.claim is figures.claim and book.glue is figures.glue


# ------------------------------------------------------------------ pages: install cell, lint, glue keys

PAGE = """---
jupytext: {}
---
# A page

```{code-cell} ipython3
import postlib
```

Text with {glue:text}`speedup:.1f` and {glue:md}`fig-caption:myst` and {glue:text}`other::key`.

```{glue:figure} fig
:name: fig-fig

caption
```
"""


def test_install_cell_is_inserted_then_regenerated_in_place():
    from postlib.book.pages import install_cell, page_profile, render_install_cell
    once = render_install_cell(PAGE, "https://example.org/a/b")
    assert once.count("```{code-cell}") == 2 and page_profile(once) is None
    assert install_cell("https://example.org/a/b", None) in once and ":tags: [hide-input]" in once
    with_profile = once.replace("sizes = setup()", 'sizes = setup("ssm")')
    moved = render_install_cell(with_profile, "https://example.org/new/home")
    assert page_profile(moved) == "ssm" and "git+https://example.org/new/home" in moved
    assert "example.org/a/b" not in moved and moved.count("```{code-cell}") == 2
    assert render_install_cell(moved, "https://example.org/new/home") == moved


def test_lint_flags_device_special_cases_everywhere_and_layout_only_on_converted_pages():
    from postlib.book.pages import code_cells, lint_page
    page = ("```{code-cell} ipython3\nimport os\nos.environ['TRITON_INTERPRET'] = '1'\n```\n\n"
            "```{code-cell} ipython3\n:tags: [hide-input]\n\nfigure('a', fig)\n```\n\n"
            "```{code-cell} ipython3\n---\ntags: [solution]\n---\nprint(inspect.getsource(f))\nfigure('b', fig)\n```\n")
    assert [tags for tags, _ in code_cells(page)] == [[], ["hide-input"], ["solution"]]
    problems = lint_page(page)
    assert any("TRITON_INTERPRET" in p for p in problems) and any("getsource" in p for p in problems)
    assert any(p.startswith("code cell 3: a figure cell") for p in problems)
    assert not any(p.startswith("code cell 2") for p in problems)
    assert len(lint_page(page, converted=False)) == 1


def test_glue_references_are_the_keys_the_markdown_names():
    from postlib.book.run import glue_references
    assert glue_references(PAGE) == {"speedup", "fig-caption", "fig"}


# ------------------------------------------------------------------ the Sphinx extension (_ext/book_pages.py)

@pytest.fixture(scope="module")
def book_pages_ext():
    pytest.importorskip("sphinx")
    import importlib.util
    spec = importlib.util.spec_from_file_location("book_pages", ROOT / "_ext" / "book_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toggle_labels_say_solution_for_solutions_and_show_code_for_plumbing(book_pages_ext):
    is_solution = book_pages_ext.is_solution
    assert is_solution(["solution"], "x = 1", "all")
    assert is_solution(["hide-cell"], "assert check_attention(my_attention)", "all")
    assert not is_solution(["hide-input"], "assert check_attention(f)", "input")
    assert not is_solution(["hide-cell"], "x = 1", "all")
    assert book_pages_ext.LABELS["input"] == ("Show code", "Hide code")
    assert book_pages_ext.LABELS["solution"][0] == "Solution"


def test_caption_numbers_get_a_colon(book_pages_ext):
    context = {"body": '<span class="caption-number">Figure 3.12 </span><span class="caption-text">A</span>'}
    book_pages_ext._caption_separator(None, "p", "page.html", context, None)
    assert context["body"].startswith('<span class="caption-number">Figure 3.12: </span>')
