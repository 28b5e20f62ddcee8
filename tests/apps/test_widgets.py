"""The helpers pages share: memory budget, refusal message, error alert guard."""
from __future__ import annotations

import logging
from collections import namedtuple

import pytest

from apps import widgets
from apps.widgets import ErrorAlert, format_bytes, memory_budget_bytes, over_budget_message

FakeMemory = namedtuple("FakeMemory", "available")


def test_budget_is_a_fraction_of_available_memory_capped(monkeypatch):
    monkeypatch.setattr(widgets.psutil, "virtual_memory", lambda: FakeMemory(8 * widgets.GIB))
    assert memory_budget_bytes() == 2 * widgets.GIB  # 25 % of 8 GiB
    assert memory_budget_bytes(fraction=1.0, cap_bytes=3 * widgets.GIB) == 3 * widgets.GIB
    monkeypatch.setattr(widgets.psutil, "virtual_memory", lambda: FakeMemory(64 * widgets.GIB))
    assert memory_budget_bytes() == widgets.BUDGET_CAP_BYTES
    with pytest.raises(ValueError, match="fraction"):
        memory_budget_bytes(fraction=0)
    with pytest.raises(ValueError, match="cap_bytes"):
        memory_budget_bytes(cap_bytes=0)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2**30) == "3.0 GiB"
    assert format_bytes(5 * 2**40) == "5.0 TiB"


def test_over_budget_message_only_when_over():
    assert over_budget_message("x", 100, 100) is None
    msg = over_budget_message("`softmax` at length 65536", 2**34, 2**32)
    assert msg.startswith("Refused: `softmax` at length 65536 needs about 16.0 GiB") and "4.0 GiB" in msg


def test_error_alert_guard_turns_exceptions_into_a_visible_message(caplog):
    alert = ErrorAlert()
    assert alert.message is None and not alert.pane.visible

    def callback(value):
        if value < 0:
            raise ValueError(f"value must be >= 0, got {value}")
        return value * 2

    guarded = alert.guard(callback)
    assert guarded(3) == 6 and alert.message is None
    with caplog.at_level(logging.ERROR, logger="apps"):
        assert guarded(-1) is None
    assert alert.message == "**ValueError:** value must be >= 0, got -1" and alert.pane.alert_type == "danger"
    assert "callback failed" in caplog.text
    alert.show("careful", kind="warning")
    assert alert.message == "careful" and alert.pane.alert_type == "warning"
    alert.clear()
    assert alert.message is None


def test_plotly_pane_stretches_and_hides_the_logo():
    pane = widgets.plotly_pane()
    assert pane.sizing_mode == "stretch_width" and pane.config["displaylogo"] is False
