"""A small version of the load test (``python -m apps.loadtest``): a few readers opening the dashboard at once.

Each reader is its own browser context. All of them must see a figure, none may
request anything off localhost or hit a page error, the slider must redraw the
figure for a lone reader afterwards, and the server must log no error. Times are
recorded but only loosely bounded: the machine running the test is shared.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.loadtest import run_load, run_protocol_load, server_problems, summary

pytestmark = [pytest.mark.browser, pytest.mark.slow]
READERS = 3


def test_a_few_readers_at_once(dashboard_server):
    pytest.importorskip("playwright.async_api")
    start = len(dashboard_server.lines)
    # Its own thread and event loop: Playwright's sync API (other test modules) keeps a loop in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(asyncio.run, run_load(dashboard_server.url, READERS, slider_trials=2,
                                                   crowd_slider=False, server_pids=dashboard_server.pids)).result()
    print(summary(report))
    assert not report["failures"], report["failures"]
    assert report["first_figure_s"]["n"] == READERS and report["first_figure_s"]["max"] < 180
    assert report["lone_slider_ms"]["n"] == 2 and report["lone_slider_ms"]["median"] < 10_000
    assert report["outside_requests"] == [] and report["page_errors"] == [] and report["console_errors"] == []
    assert report["cpu_s_until_all_figures"]["server"] > 0
    assert not server_problems("".join(dashboard_server.lines[start:]))


def test_the_servers_share_alone(dashboard_server):
    report = run_protocol_load(dashboard_server.url, READERS, server_pids=dashboard_server.pids)
    assert report["page_s"]["n"] == READERS and report["page_and_assets_s"]["max"] < 120
    assert report["server_cpu_s"] > 0
