"""Layout helpers that fit any screen, from a 390-px phone to a desktop.

Pages never give a widget or a column a fixed pixel width wider than a phone:

* :func:`controls` — widgets in a row that wraps: several per line on a
  desktop, one per line on a phone;
* :func:`beside` — a control panel beside its figures on a wide screen, above
  them on a narrow one (a wrapping flex row, no media query needed);
* :func:`labelled_player` — Panel's Player with a title showing its value and
  text labels under its buttons ("Play", "Pause", "Step"...), without the
  speed and loop controls a phone has no room for;
* :func:`section` — a heading and a paragraph of Markdown.

Figures stretch to their container (``apps.figures.plotly_pane``); plotly
redraws them at the container's width. Heights come from the figure.
"""
from __future__ import annotations

import panel as pn

# Narrowest a wrapped widget may get before it takes a line of its own (fits a phone).
WIDGET_BASIS_PX = 200
CONTROLS_BASIS_PX = 260   # the control panel beside figures: its width on a desktop
CONTENT_BASIS_PX = 420    # below CONTROLS + CONTENT (+ gap) the figures move under the controls
PLAYER_BUTTONS = ["first", "previous", "pause", "play", "next", "last"]
# Text under each of the Player's icon buttons (CSS generated content is read by screen readers too).
PLAYER_CSS = """
.bk-input-group > div:has(> button.play) { flex-wrap: wrap; gap: 2px; }
button.first, button.previous, button.pause, button.play, button.next, button.last {
  display: inline-flex; flex-direction: column; align-items: center; min-width: 3.2em; font-size: 0.95em;
}
button.first::after { content: "Start"; font-size: 0.7em; }
button.previous::after { content: "Back"; font-size: 0.7em; }
button.pause::after { content: "Pause"; font-size: 0.7em; }
button.play::after { content: "Play"; font-size: 0.7em; }
button.next::after { content: "Step"; font-size: 0.7em; }
button.last::after { content: "End"; font-size: 0.7em; }
.pn-player-title { font-weight: 500; }
"""


def _flex_item(obj, basis_px: int, grow: int = 1, max_px: int | None = None):
    """Give ``obj`` a flex basis (its width before the row wraps) and let it stretch to the line's width."""
    styles = dict(getattr(obj, "styles", None) or {})
    styles["flex"] = f"{grow} 1 {basis_px}px"
    styles["min-width"] = "0"
    if max_px is not None:
        styles["max-width"] = f"{max_px}px"
    obj.styles = styles
    if getattr(obj, "width", None) is not None and obj.width > basis_px:
        obj.width = None
    obj.sizing_mode = "stretch_width"
    return obj


def controls(*widgets, basis_px: int = WIDGET_BASIS_PX, **kw) -> pn.FlexBox:
    """Widgets in a wrapping row: as many per line as fit, each at least ``basis_px`` wide."""
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("css_classes", ["bt-controls"])
    items = [_flex_item(w, basis_px) for w in widgets]
    return pn.FlexBox(*items, flex_wrap="wrap", gap="0 16px", align_items="flex-end", **kw)


def stack(*objects, **kw) -> pn.Column:
    """Objects one under another, stretching to the width they are given."""
    kw.setdefault("sizing_mode", "stretch_width")
    return pn.Column(*objects, **kw)


def beside(panel, content, panel_basis_px: int = CONTROLS_BASIS_PX, content_basis_px: int = CONTENT_BASIS_PX,
           **kw) -> pn.FlexBox:
    """``panel`` (controls) left of ``content`` (figures) when both fit, else ``panel`` above ``content``."""
    kw.setdefault("sizing_mode", "stretch_width")
    left = _flex_item(panel, panel_basis_px, grow=1, max_px=max(panel_basis_px + 80, 340))
    right = _flex_item(content, content_basis_px, grow=4)
    return pn.FlexBox(left, right, flex_wrap="wrap", gap="8px 24px", align_items="flex-start", **kw)


def labelled_player(label: str, start: int, end: int, value: int | None = None, interval: int = 300,
                    **kw) -> pn.widgets.Player:
    """A Player whose title shows ``label: value`` and whose buttons say what they do."""
    kw.setdefault("sizing_mode", "stretch_width")
    kw.setdefault("css_classes", ["bt-player"])
    return pn.widgets.Player(label=label, start=start, end=end, value=start if value is None else value,
                             interval=interval, loop_policy="once", show_loop_controls=False, show_value=True,
                             visible_buttons=list(PLAYER_BUTTONS), width=None, height=None,
                             stylesheets=[PLAYER_CSS], **kw)


def section(markdown: str, **kw) -> pn.pane.Markdown:
    """A block of Markdown (a heading and its paragraph) that wraps at the page's width."""
    kw.setdefault("sizing_mode", "stretch_width")
    return pn.pane.Markdown(markdown, **kw)


def rule() -> pn.pane.Markdown:
    """A horizontal rule. Not ``pn.layout.Divider``: added after the first render (as the dashboard
    adds pages) it fetches its CSS from cdn.holoviz.org (Panel 1.9.4)."""
    return pn.pane.Markdown("---", sizing_mode="stretch_width")
