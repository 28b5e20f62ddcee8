"""Layout helpers, and a browser-free check that no page asks for more width than a phone has."""
from __future__ import annotations

import panel as pn
import pytest

from apps.dashboard import default_pages
from apps.layout import PLAYER_BUTTONS, beside, controls, labelled_player, rule, section
from apps.widgets import Page, guarded

PHONE_CONTENT_PX = 360  # a 390-px phone, less the page's padding


def test_controls_wrap_and_stretch():
    a, b = pn.widgets.IntSlider(label="a", width=500), pn.widgets.Select(options=[1, 2])
    box = controls(a, b, basis_px=150)
    assert isinstance(box, pn.FlexBox) and box.flex_wrap == "wrap" and box.sizing_mode == "stretch_width"
    assert a.styles["flex"] == "1 1 150px" and a.width is None and a.sizing_mode == "stretch_width"


def test_beside_puts_controls_above_the_figures_when_narrow():
    left, right = pn.Column(), pn.Column()
    row = beside(left, right)
    assert row.flex_wrap == "wrap" and left.styles["flex"].endswith("260px") and right.styles["flex"].endswith("420px")
    assert left.styles["max-width"] == "340px"


def test_labelled_player_has_a_title_a_value_and_words_on_its_buttons():
    player = labelled_player("time step", start=1, end=10)
    assert player.label == "time step" and player.show_value and not player.show_loop_controls
    assert player.visible_buttons == PLAYER_BUTTONS and player.width is None
    css = "".join(player.stylesheets)
    for word in ("Start", "Back", "Pause", "Play", "Step", "End"):
        assert f'content: "{word}"' in css


def test_section_and_rule_are_markdown_not_a_divider():
    assert isinstance(rule(), pn.pane.Markdown) and rule().object == "---"
    assert section("# Title").sizing_mode == "stretch_width"


def test_guarded_methods_show_errors_in_the_page():
    class Broken(Page):
        @guarded
        def draw(self, value):
            raise ValueError(f"value must be positive, got {value}")

        def __panel__(self):
            return pn.Column(self.alert.pane, self.refusal)

    page = Broken()
    assert page.draw(-1) is None and page.alert.message == "**ValueError:** value must be positive, got -1"
    assert page.refuse("Refused: too long.") and page.refusal.visible
    assert not page.refuse(None) and not page.refusal.visible


def _too_wide(view) -> list[str]:
    out = []
    for obj in pn.panel(view).select(pn.viewable.Viewable):
        for attr in ("width", "min_width"):
            value = getattr(obj, attr, None)
            if isinstance(value, (int, float)) and value > PHONE_CONTENT_PX:
                out.append(f"{type(obj).__name__}({getattr(obj, 'name', '')!r}).{attr} = {value}")
    return out


@pytest.mark.parametrize("spec", [p for p in default_pages() if p.viewer is not None], ids=lambda p: p.slug)
def test_no_page_asks_for_more_width_than_a_phone_has(spec):
    page = spec.viewer(autorun=False) if spec.slug == "scaling" else spec.viewer()
    assert not _too_wide(page), _too_wide(page)
