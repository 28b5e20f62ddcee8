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

from apps.loadtest import run_load, server_problems, summary
from apps.loadtest_protocol import ClientTimes, calibrate, protocol_reader, protocol_summary, run_protocol_load

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
    print(protocol_summary(report))
    assert not report["failures"], report["failures"]
    assert report["document_s"]["n"] == READERS and report["document_s"]["max"] < 120
    assert report["page_s"]["median"] <= report["assets_s"]["median"] <= report["document_s"]["median"]
    assert report["server_cpu_s"] > 0


def test_a_readers_scripts_arrive_while_later_sessions_are_still_being_built(dashboard_server):
    """Page requests arriving together used to be built back to back, and nobody's scripts or
    websocket were served until the last build ended (apps/session_gate.py). The first reader's
    scripts must now arrive before the last reader's page; its document too, but how soon depends
    on this machine's load (the unit tests in test_session_gate.py hold the gate's order exactly)."""
    readers = 8

    async def crowd():
        return await asyncio.gather(*(protocol_reader(dashboard_server.url, ClientTimes()) for _ in range(readers)))

    with ThreadPoolExecutor(max_workers=1) as pool:
        results = pool.submit(asyncio.run, crowd()).result()
    assert not [r["failure"] for r in results if "failure" in r]
    first = min(results, key=lambda r: r["page_s"])
    assert first["models"] > 50  # its whole document came over the websocket
    assert first["assets_s"] < max(r["page_s"] for r in results), results


def test_readers_on_their_own_machines(dashboard_server):
    """--own-machines: one browser measures its own work; protocol readers then wait as long."""
    pytest.importorskip("playwright.async_api")
    with ThreadPoolExecutor(max_workers=1) as pool:
        client = pool.submit(asyncio.run, calibrate(dashboard_server.url)).result()
    assert client.before_websocket_s >= 0 and 0 < client.drawing_s < 60 and client.browser_first_figure_s > 0
    plots = {tuple(e["model"]["id"]) for e in client.patches if e["model"]["id"][0].endswith("PlotlyPlot")}
    assert plots  # the browser told the server its figures' sizes; named by (type, ordinal)
    report = run_protocol_load(dashboard_server.url, 2, client, server_pids=dashboard_server.pids)
    print(protocol_summary(report))
    assert not report["failures"], report["failures"]
    assert report["estimated_first_figure_s"]["n"] == 2 and report["patches_s"]["n"] == 2
    assert report["client"]["model_first_figure_s"] > 0
