"""Load test: N readers open the dashboard together; how long until each sees a figure, and how fast a slider is.

    python -m apps.loadtest --readers 20                 # serves the dashboard itself, then measures
    python -m apps.loadtest --readers 20 --num-procs 2   # ... with two server processes
    python -m apps.loadtest --url http://127.0.0.1:5006/dashboard --readers 6
    python -m apps.loadtest --readers 20 --protocol       # no browsers: the server's share alone
    python -m apps.loadtest --readers 20 --own-machines   # ... plus one browser's own work, measured

Each reader is a fresh headless-Chromium context (the system Chromium, never a
downloaded one) opening the dashboard at the same moment. Reported:

* **first figure**: seconds from the reader's request to the first plotly trace
  drawn on its screen (median, 90th percentile, max);
* **slider, lone reader**: after the crowd has left, one reader moves the
  page's first slider with the keyboard; milliseconds from the key press to the
  figure's redraw (plotly's ``plotly_afterplot`` event), measured in the page's
  own clock (median, 90th percentile);
* **slider, crowd**: the same, every reader at once, right after their first figure;
* requests that left localhost (all aborted; must be 0), page errors, console
  errors, and the server's log lines with a traceback or an error;
* the load average before and after, and the server's resident memory.

The machine running the browsers also runs the server, so on a 2-core machine
the readers' rendering competes with the server: the numbers are an upper
bound on what readers on their own machines would see. ``--own-machines``
(``apps.loadtest_protocol``) measures that case: the crowd asks the server
everything a browser asks, over HTTP and the websocket, and waits as long as
one real browser spent on its own work.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from apps.loadtest_protocol import calibrate, protocol_summary, run_protocol_load

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("POSTLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--disable-renderer-backgrounding",
                 "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
FIGURE = ".js-plotly-plot .trace"  # Playwright's CSS engine pierces Panel's shadow roots
SLIDER = ".noUi-handle"
SERVER_START_TIMEOUT_S = 180

# Records the time of every key press, and the first redraw of any plotly figure after it.
INSTALL_TIMER_JS = """els => {
    if (!window.__bt_timer) {
        window.__bt_timer = {t0: null, t1: null};
        document.addEventListener('keydown', () => {
            window.__bt_timer.t0 = performance.now(); window.__bt_timer.t1 = null;
        }, true);
    }
    for (const el of els) {
        if (el.__bt_hooked || !el.on) continue;
        el.__bt_hooked = true;
        el.on('plotly_afterplot', () => {
            const t = window.__bt_timer;
            if (t.t0 !== null && t.t1 === null) t.t1 = performance.now();
        });
    }
    return els.length;
}"""


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS


class ServedDashboard:
    """``python -m apps.serve`` in a subprocess on a free port, with everything it prints."""

    def __init__(self, port: int, extra_args: list[str] | tuple[str, ...] = (), env: dict | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/dashboard"
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.proc = subprocess.Popen([sys.executable, "-m", "apps.serve", "--port", str(port), *extra_args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until_ready(self, timeout: float = SERVER_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard server exited with {self.proc.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/liveness", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the dashboard did not answer within {timeout} s:\n{self.output}")

    def pids(self) -> list[int]:
        import psutil

        try:
            proc = psutil.Process(self.proc.pid)
            return [proc.pid] + [p.pid for p in proc.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_bytes(self) -> int:
        """Resident memory of the server and its forked workers."""
        import psutil

        try:
            proc = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            return 0

    def close(self) -> None:
        import psutil

        try:  # with --num-procs the workers are the server's children: end them too
            workers = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            workers = []
        for worker in workers:
            try:
                worker.terminate()
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)


def cpu_seconds(pids_of: Callable[[], list[int]]) -> float:
    """User + system CPU seconds used so far by a set of processes (children included)."""
    import psutil

    total = 0.0
    for pid in pids_of():
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _browser_pids(exclude: set[int]) -> list[int]:
    """This process's descendants (Playwright's driver, Chromium) except ``exclude`` (the server)."""
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in exclude]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reader:
    """What one browser context saw."""

    index: int
    first_figure_s: float | None = None
    slider_ms: list[float] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failure: str | None = None


async def _open_reader(browser, url: str, index: int, viewport: tuple[int, int], timeout_s: float):
    reader = Reader(index)
    context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.set_default_timeout(timeout_s * 1000)

    async def route(r):
        if is_local(r.request.url):
            await r.continue_()
        else:
            reader.outside.append(r.request.url)
            await r.abort()

    await context.route("**/*", route)
    page = await context.new_page()
    page.on("pageerror", lambda err: reader.page_errors.append(str(err)))
    page.on("console", lambda msg: reader.console_errors.append(msg.text) if msg.type == "error" else None)
    return reader, context, page


async def _first_figure(reader: Reader, page, url: str) -> None:
    start = time.monotonic()
    try:
        await page.goto(url, wait_until="commit")
        await page.locator(FIGURE).first.wait_for(state="attached")
        reader.first_figure_s = time.monotonic() - start
    except Exception as err:  # noqa: BLE001 - a reader that never saw a figure is a result, not a crash
        reader.failure = f"first figure: {type(err).__name__}: {str(err)[:200]}"


async def _slider_trials(reader: Reader, page, trials: int, timeout_s: float) -> None:
    """Move the first slider ``trials`` times — the first half to values not shown yet, the second half
    back over them — and record each key press → redraw delay in ms."""
    try:
        handle = page.locator(SLIDER).first
        await handle.wait_for(state="visible")
        await asyncio.sleep(1.0)  # let the first render settle
        direction = "ArrowRight"
        for trial in range(trials):
            if trial == trials // 2:
                direction = "ArrowLeft"
            await page.locator(".js-plotly-plot").evaluate_all(INSTALL_TIMER_JS)
            before = await handle.get_attribute("aria-valuenow")
            await handle.focus()
            await page.keyboard.press(direction)
            if await handle.get_attribute("aria-valuenow") == before:  # at the end of its range: turn around
                direction = "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"
                await page.keyboard.press(direction)
            await page.wait_for_function("window.__bt_timer && window.__bt_timer.t1 !== null",
                                         timeout=timeout_s * 1000)
            timer = await page.evaluate("window.__bt_timer")
            reader.slider_ms.append(timer["t1"] - timer["t0"])
            await asyncio.sleep(0.3)
    except Exception as err:  # noqa: BLE001
        reader.failure = (reader.failure or "") + f" slider: {type(err).__name__}: {str(err)[:200]}"


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"n": len(values), "median": statistics.median(values), "p90": p90, "max": ordered[-1]}


async def run_load(url: str, readers: int, *, slider_trials: int = 10, crowd_slider: bool = True,
                   viewport: tuple[int, int] = (1400, 1000), timeout_s: float = 240,
                   server_pids: Callable[[], list[int]] | None = None) -> dict:
    """Open ``readers`` contexts at once on ``url``; then a lone reader's slider. Returns the report dict.

    With ``server_pids`` (the served dashboard's processes), the CPU seconds the server and the
    browsers spent until every reader saw a figure are reported too: on a busy machine they say
    what the wall-clock times cannot.
    """
    from playwright.async_api import async_playwright

    server_pids = server_pids or (lambda: [])
    report: dict = {"url": url, "readers": readers, "load_before": os.getloadavg()}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            opened = [await _open_reader(browser, url, i, viewport, timeout_s) for i in range(readers)]
            browsers = lambda: _browser_pids(set(server_pids()))  # noqa: E731
            cpu0 = (cpu_seconds(server_pids), cpu_seconds(browsers))
            t0 = time.monotonic()
            await asyncio.gather(*(_first_figure(r, p, url) for r, _c, p in opened))
            report["all_first_figures_s"] = time.monotonic() - t0
            report["cpu_s_until_all_figures"] = {"server": cpu_seconds(server_pids) - cpu0[0],
                                                 "browsers": cpu_seconds(browsers) - cpu0[1]}
            if crowd_slider:
                await asyncio.gather(*(_slider_trials(r, p, 3, timeout_s) for r, _c, p in opened))
            crowd = [r for r, _c, _p in opened]
            for _r, context, _p in opened:
                await context.close()
            await asyncio.sleep(3.0)  # the crowd's sessions close on the server
            lone, context, page = await _open_reader(browser, url, readers, viewport, timeout_s)
            await _first_figure(lone, page, url)
            await _slider_trials(lone, page, slider_trials, timeout_s)
            await context.close()
        finally:
            await browser.close()
    report["load_after"] = os.getloadavg()
    report["first_figure_s"] = _stats([r.first_figure_s for r in crowd if r.first_figure_s is not None])
    report["crowd_slider_ms"] = _stats([ms for r in crowd for ms in r.slider_ms])
    report["lone_first_figure_s"] = lone.first_figure_s
    report["lone_slider_ms"] = _stats(lone.slider_ms)
    half = len(lone.slider_ms) // 2
    report["lone_slider_new_values_ms"] = _stats(lone.slider_ms[:max(half, 1)])
    report["lone_slider_revisits_ms"] = _stats(lone.slider_ms[half:] if half else [])
    everyone = crowd + [lone]
    report["outside_requests"] = sorted({u for r in everyone for u in r.outside})
    report["sessions_with_outside_requests"] = sum(bool(r.outside) for r in everyone)
    report["page_errors"] = sorted({e for r in everyone for e in r.page_errors})
    report["console_errors"] = sorted({e for r in everyone for e in r.console_errors})
    report["failures"] = [f"reader {r.index}: {r.failure}" for r in everyone if r.failure]
    report["readers_detail"] = [asdict(r) for r in everyone]
    return report


def server_problems(log_text: str) -> list[str]:
    """Lines of a server log that report an error (tracebacks, ERROR, unretrieved task exceptions)."""
    keys = ("Traceback", "ERROR", "Task exception was never retrieved", "Exception in callback")
    return [line.rstrip() for line in log_text.splitlines() if any(k in line for k in keys)]


def summary(report: dict) -> str:
    ff, ls, cs = report["first_figure_s"], report["lone_slider_ms"], report["crowd_slider_ms"]
    lines = [f"readers: {report['readers']}   url: {report['url']}   server: {report.get('server_args', 'external')}",
             f"load average before: {tuple(round(v, 2) for v in report['load_before'])}, "
             f"after: {tuple(round(v, 2) for v in report['load_after'])}"]
    if ff.get("n"):
        lines.append(f"first figure (s): median {ff['median']:.1f}, p90 {ff['p90']:.1f}, max {ff['max']:.1f} "
                     f"({ff['n']} of {report['readers']} readers)")
    cpu = report.get("cpu_s_until_all_figures")
    if cpu:
        n = report["readers"]
        lines.append(f"CPU seconds until every reader saw a figure: server {cpu['server']:.1f} "
                     f"({cpu['server'] / n:.2f} per reader), browsers {cpu['browsers']:.1f} "
                     f"({cpu['browsers'] / n:.2f} per reader); all figures after {report['all_first_figures_s']:.1f} s")
    if cs.get("n"):
        lines.append(f"slider with the crowd on (ms): median {cs['median']:.0f}, p90 {cs['p90']:.0f} ({cs['n']} moves)")
    if ls.get("n"):
        lines.append(f"slider, lone reader (ms): median {ls['median']:.0f}, p90 {ls['p90']:.0f} ({ls['n']} moves)")
        new, back = report.get("lone_slider_new_values_ms", {}), report.get("lone_slider_revisits_ms", {})
        if new.get("n") and back.get("n"):
            lines.append(f"  to values not shown yet: median {new['median']:.0f}; back over them (cached): "
                         f"median {back['median']:.0f}")
    if "rss_before" in report:
        lines.append(f"server RSS: {report['rss_before'] / 2**20:.0f} MiB idle, {report['rss_after'] / 2**20:.0f} MiB "
                     "after the run")
    lines.append(f"requests off localhost: {len(report['outside_requests'])} "
                 f"(in {report['sessions_with_outside_requests']} sessions)")
    for key in ("outside_requests", "page_errors", "console_errors", "failures", "server_problems"):
        for item in report.get(key, [])[:10]:
            lines.append(f"  {key}: {item}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apps.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=20, help="browser contexts opening at once (default 20)")
    parser.add_argument("--url", help="an already served dashboard; default: serve one here on a free port")
    parser.add_argument("--page", help="open this page slug (?page=...) instead of the first page")
    parser.add_argument("--num-procs", type=int, default=1, help="server processes when serving here")
    parser.add_argument("--threads", type=int, default=None, help="server threads per process when serving here")
    parser.add_argument("--slider-trials", type=int, default=10, help="slider moves for the lone reader")
    parser.add_argument("--no-crowd-slider", action="store_true", help="skip the slider moves of the crowd")
    parser.add_argument("--viewport", default="1400x1000", help="WIDTHxHEIGHT of each reader's window")
    parser.add_argument("--protocol", action="store_true",
                        help="no browsers: each reader asks the server what a browser asks (page, scripts, "
                             "document over the websocket), with no client time: the server's share")
    parser.add_argument("--own-machines", action="store_true",
                        help="as --protocol, with each reader waiting as long as one browser, measured first, "
                             "spends on its own work: readers on their own machines")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args(argv)
    if args.readers < 1:
        parser.error(f"--readers must be >= 1, got {args.readers}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    viewport = tuple(int(v) for v in args.viewport.lower().split("x"))
    server = None
    server_args: list[str] = []
    if args.url is None:
        server_args = ["--num-procs", str(args.num_procs)] + (["--threads", str(args.threads)] if args.threads else [])
        server = ServedDashboard(free_port(), server_args)
        server.wait_until_ready()
        url = server.url
    else:
        url = args.url
    if args.page:
        url += f"?page={args.page}"
    try:
        rss_before = server.rss_bytes() if server else None
        if args.protocol or args.own_machines:
            client = asyncio.run(calibrate(url, viewport)) if args.own_machines else None
            report = run_protocol_load(url, args.readers, client, server_pids=server.pids if server else None)
        else:
            report = asyncio.run(run_load(url, args.readers, slider_trials=args.slider_trials,
                                          crowd_slider=not args.no_crowd_slider, viewport=viewport,
                                          server_pids=server.pids if server else None))
        report["server_args"] = " ".join(server_args) or "external"
        if server:
            report["rss_before"], report["rss_after"] = rss_before, server.rss_bytes()
            report["server_problems"] = server_problems(server.output)
            report["server_log"] = server.output
    finally:
        if server:
            server.close()
    print(protocol_summary(report) if "mode" in report else summary(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
