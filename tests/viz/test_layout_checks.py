"""The browser test's geometry checks, on hand-made measurements (so they are known to catch overlaps)."""
from . import layout_checks


def _box(kind, x0, y0, x1, y1, label=""):
    return dict(kind=kind, label=label or kind, x0=x0, y0=y0, x1=x1, y1=y1)


def _m(*boxes, width=400, height=300, mode="narrow", **kw):
    return dict(width=width, height=height, boxes=list(boxes), mode=mode, modebarVisible=False, scrollWidth=390,
                viewport=390, **kw)


def test_overlapping_legend_and_colorbar_are_caught_and_touching_ones_are_not():
    m = _m(_box("legend", 300, 10, 390, 100), _box("colorbar", 350, 50, 380, 250))
    assert layout_checks.overlaps(m) == ["legend overlaps colorbar by 30 px"]
    assert layout_checks.overlaps(_m(_box("legend", 0, 0, 100, 20), _box("colorbar", 0, 20, 100, 40))) == []


def test_annotations_may_sit_in_the_plot_but_legends_may_not():
    m = _m(_box("plot", 50, 50, 350, 250), _box("annotation", 60, 60, 120, 80, "note"), _box("legend", 300, 200, 380, 260))
    assert layout_checks.overlaps(m) == ["plot overlaps legend by 50 px"]


def test_play_button_over_the_slider_label_is_caught():
    m = _m(_box("button", 0, 400, 40, 430, "❚❚"), _box("slider-value", 20, 405, 90, 420, "t = 5"))
    assert "button '❚❚' overlaps slider-value 't = 5'" in layout_checks.overlaps(m)[0]


def test_a_title_wider_than_the_figure_is_cut_off():
    m = _m(_box("title", 60, 5, 520, 25, "A very long title"), width=400)
    assert "title 'A very long title' is cut off" in layout_checks.outside(m)[0]


def test_narrow_checks():
    m = _m(_box("plot", 52, 50, 200, 250), modebar=True)
    m.update(modebarVisible=True, scrollWidth=500, mode="wide")
    found = "\n".join(layout_checks.narrow_problems(m))
    for expected in ("did not switch", "148 px wide, less than 200", "toolbar", "scrolls sideways"):
        assert expected in found
