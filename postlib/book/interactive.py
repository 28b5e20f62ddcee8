"""explore(): one call gives ipywidgets controls in a live notebook and, in the static book, a plotly
figure with a slider over precomputed frames (pass the result to ``figure`` to number and caption it)."""
from __future__ import annotations

from typing import Callable

from .runtime import in_book_build


def explore(builder: Callable, controls: dict, **fixed):
    """Interactive exploration of a ``postlib.viz`` builder.

    ``controls`` maps a builder argument to the list of values to offer.
    In a live notebook: ipywidgets sliders/dropdowns re-run the builder, and None is returned.
    In the static book: the first control becomes a plotly slider over precomputed frames (the other
    controls stay at their first value), and that figure is returned.
    """
    if not controls:
        raise ValueError("controls must name at least one argument and its values")
    if in_book_build() or not widgets_available():
        from ..viz.core import frames_figure
        name, values = next(iter(controls.items()))
        rest = {k: list(v)[0] for k, v in list(controls.items())[1:]}
        return frames_figure(builder, name, values, play=False, **rest, **fixed)
    import ipywidgets as widgets
    from IPython.display import display

    out = widgets.Output()
    pickers = {k: (widgets.SelectionSlider(options=list(v), description=k, continuous_update=False)
                   if all(isinstance(x, (int, float)) for x in v)
                   else widgets.Dropdown(options=list(v), description=k))
               for k, v in controls.items()}

    def redraw(_=None):
        with out:
            out.clear_output(wait=True)
            builder(**{k: w.value for k, w in pickers.items()}, **fixed).show()

    for w in pickers.values():
        w.observe(redraw, names="value")
    redraw()
    display(widgets.VBox([*pickers.values(), out]))
    return None


def widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
