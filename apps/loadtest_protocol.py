"""The load test without browsers on this machine: each reader does, over the wire, what a browser asks of the server.

A reader's browser asks the dashboard server for four things, in order:

1. the page (the server builds the reader's session here);
2. every script and style sheet the page names, up to 6 at a time as a browser does;
3. the document, over the Bokeh websocket: ACK, then PULL-DOC-REQ, answered by the
   whole document (the figures' data in binary buffers);
4. after drawing it, ~20 PATCH-DOC messages: its window size, time zone and colour
   scheme, and every figure's viewport and drawn size. Panel handles each one.

:func:`protocol_reader` does all four, so the server's work per reader is a
browser's (the report gives the server's CPU seconds per reader to compare).
What it leaves out is the browser's own work — parsing the scripts and drawing —
which on a class's laptops happens on 20 other machines, not on the server's
cores.

:func:`calibrate` measures that client work once, with one headless Chromium on
an idle server: the seconds from its last script to its websocket, and from the
document's arrival to its first figure drawn; it also records the PATCH-DOC
messages that browser sent. With those, the crowd's readers wait as long as the
browser did before opening the websocket, and before sending its messages, and
each reader's **estimated first figure** is the time its document arrived plus
the measured drawing time: what a reader on their own machine, as fast as one
core of this one, would see while 19 others load the page at the same moment.
One protocol reader on the idle server checks the model against that browser;
what it falls short (client work it does not see, such as parsing the page's
HTML) is added to every reader's estimate, so a lone reader's estimate is the
browser's own time.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urljoin, urlparse

BROWSER_CONNECTIONS_PER_HOST = 6  # what Chromium opens to one HTTP/1.1 host
ASSET = re.compile(r'(?:src|href)="([^"#]+\.(?:js|css)(?:\?[^"]*)?)"')
TOKEN = re.compile(r'"token":\s*"([^"]+)"')


@dataclass
class ClientTimes:
    """A lone browser's own work, measured by :func:`calibrate` (zero: a reader with no client time)."""

    before_websocket_s: float = 0.0  # last script or style received → websocket opened (parse, start-up)
    drawing_s: float = 0.0  # document received → first plotly trace on screen
    patches: list[dict] = field(default_factory=list)  # events it sent, models named by (type, ordinal)
    browser_first_figure_s: float | None = None  # that browser's own first figure (idle server)
    unmodelled_s: float = 0.0  # what a lone reader of this model falls short of that browser, added back


class BokehSocket:
    """The client end of Bokeh's websocket protocol: messages of 3 text frames plus (header, binary) buffers."""

    def __init__(self, conn):
        self.conn = conn

    @classmethod
    async def open(cls, page_url: str, token: str) -> "BokehSocket":
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        parsed = urlparse(page_url)
        ws_url = f"ws://{parsed.netloc}{parsed.path.rstrip('/')}/ws"
        request = HTTPRequest(ws_url, headers={"Origin": f"http://{parsed.netloc}"})
        conn = await websocket_connect(request, subprotocols=["bokeh", token], max_message_size=2**30)
        return cls(conn)

    async def read(self) -> tuple[dict, dict, list[bytes]]:
        """The next whole message: (header, content, buffers)."""
        frames = [await self._frame() for _ in range(3)]
        header, content = json.loads(frames[0]), json.loads(frames[2])
        buffers = []
        for _ in range(header.get("num_buffers", 0)):
            await self._frame()  # the buffer's id
            buffers.append(await self._frame())
        return header, content, buffers

    async def _frame(self):
        frame = await self.conn.read_message()
        if frame is None:
            raise ConnectionError("the dashboard closed the websocket")
        return frame

    async def send(self, msgtype: str, content: dict) -> str:
        msgid = uuid.uuid4().hex
        for part in ({"msgid": msgid, "msgtype": msgtype}, {}, content):
            await self.conn.write_message(json.dumps(part))
        return msgid

    async def request(self, msgtype: str, content: dict) -> tuple[dict, dict, list[bytes]]:
        """Send, then read until the reply to this message (other messages are skipped)."""
        msgid = await self.send(msgtype, content)
        while True:
            header, body, buffers = await self.read()
            if header.get("reqid") == msgid:
                if header["msgtype"] == "ERROR":
                    raise RuntimeError(f"the dashboard answered {msgtype} with an error: {body}")
                return header, body, buffers

    def close(self) -> None:
        self.conn.close()


def model_names(doc: dict) -> dict[str, tuple[str, int]]:
    """Every model id in a pulled document → (its type, how many models of that type came before it).

    Ids differ from session to session (they come from one counter in the server), but a
    session of the same page holds the same models in the same order, so (type, ordinal)
    names a model in any of them."""
    names: dict[str, tuple[str, int]] = {}
    seen: Counter = Counter()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "id" in node and "name" in node and node["id"] not in names:
                names[node["id"]] = (node["name"], seen[node["name"]])
                seen[node["name"]] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return names


def rename_models(events: list[dict], names: dict) -> list[dict]:
    """``events`` with each ``model.id`` replaced through ``names`` (events whose model is unknown are dropped).

    One way, ``names`` is :func:`model_names` (id → (type, ordinal)); the other, its inverse. A
    (type, ordinal) read back from JSON is a list, and is looked up as the tuple it was."""
    out = []
    for event in events:
        model = event.get("model", {}).get("id")
        model = tuple(model) if isinstance(model, list) else model
        if model in names:
            out.append({**event, "model": {"id": names[model]}})
    return out


async def protocol_reader(url: str, client: ClientTimes, timeout_s: float = 240) -> dict:
    """One reader's requests (page, assets, document, patches); seconds from the start to each step."""
    from tornado.httpclient import AsyncHTTPClient

    http = AsyncHTTPClient(force_instance=True, max_clients=BROWSER_CONNECTIONS_PER_HOST)
    times: dict = {}
    start = time.monotonic()
    try:
        page = (await http.fetch(url, request_timeout=timeout_s)).body.decode("utf-8", "replace")
        times["page_s"] = time.monotonic() - start
        assets = ASSET.findall(page)
        await asyncio.gather(*(http.fetch(urljoin(url, ref), request_timeout=timeout_s) for ref in assets))
        times["assets_s"] = time.monotonic() - start
        token = TOKEN.search(page)
        if token is None:
            raise RuntimeError("the page names no session token: is this a Bokeh server page?")
        await asyncio.sleep(client.before_websocket_s)
        socket = await asyncio.wait_for(BokehSocket.open(url, token.group(1)), timeout_s)
        times["socket_s"] = time.monotonic() - start
        try:
            await asyncio.wait_for(socket.read(), timeout_s)  # ACK
            times["ack_s"] = time.monotonic() - start
            _header, reply, _buffers = await asyncio.wait_for(socket.request("PULL-DOC-REQ", {}), timeout_s)
            times["document_s"] = time.monotonic() - start
            times["estimated_first_figure_s"] = times["document_s"] + client.drawing_s + client.unmodelled_s
            await asyncio.sleep(client.drawing_s)
            ids_by_name = {name: mid for mid, name in model_names(reply["doc"]).items()}
            # Sent one after another without waiting, as a browser does; then every answer is read.
            pending = {await socket.send("PATCH-DOC", {"events": [event]})
                       for event in rename_models(client.patches, ids_by_name)}
            while pending:
                header, body, _buffers = await asyncio.wait_for(socket.read(), timeout_s)
                if header.get("msgtype") == "ERROR":
                    raise RuntimeError(f"the dashboard answered a PATCH-DOC with an error: {body}")
                pending.discard(header.get("reqid"))
            times["patches_s"] = time.monotonic() - start
            times["models"] = len(ids_by_name)
        finally:
            socket.close()
    except Exception as err:  # noqa: BLE001 - a reader that failed is a result
        times["failure"] = f"{type(err).__name__}: {str(err)[:200]}"
    finally:
        http.close()
    return times


# Installed before any page script: the page's own clock at the websocket's creation and at each
# message it receives (Bokeh's handler runs after these listeners were added, in the same task).
RECORD_WEBSOCKET_JS = """(() => {
    const Original = window.WebSocket;
    window.__btSocket = {opened: null, messages: []};
    window.WebSocket = function (...args) {
        const ws = new Original(...args);
        window.__btSocket.opened = performance.now();
        ws.addEventListener('message', (event) => {
            const head = typeof event.data === 'string' ? event.data.slice(0, 120) : null;
            window.__btSocket.messages.push([performance.now(), head]);
        });
        return ws;
    };
    window.WebSocket.prototype = Original.prototype;
    Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})();"""

PAGE_TIMES_JS = """() => {
    const s = window.__btSocket;
    const assets = performance.getEntriesByType('resource')
        .filter(r => /[.](js|css)([?]|$)/.test(r.name) && r.responseEnd <= s.opened)
        .map(r => r.responseEnd);
    return {now: performance.now(), opened: s.opened, messages: s.messages,
            last_asset: assets.length ? Math.max(...assets) : s.opened};
}"""


def _document_arrival_ms(messages: list) -> float:
    """The page-clock time of the last frame of the PULL-DOC-REPLY among a socket's messages."""
    for i, (_t, head) in enumerate(messages):
        if head and '"PULL-DOC-REPLY"' in head:
            buffers = int(re.search(r'"num_buffers":\s*(\d+)', head).group(1)) if "num_buffers" in head else 0
            last = i + 2 + 2 * buffers
            if last < len(messages):
                return messages[last][0]
    raise RuntimeError("the calibrating browser's websocket never received the whole document")


async def calibrate(url: str, viewport: tuple[int, int] = (1400, 1000), timeout_s: float = 240) -> ClientTimes:
    """One headless Chromium opens ``url``: how long its own work took, and the PATCH-DOC events it sent.

    The times are read in the page's own clock: from the last script or style received before the
    websocket opened to its opening (the scripts' parsing and start-up), and from the document's last
    frame to the first plotly trace in the page (Bokeh building the views, plotly drawing).
    """
    from playwright.async_api import async_playwright

    from apps.loadtest import CHROMIUM, CHROMIUM_ARGS, FIGURE

    sent: list[dict] = []
    names: dict = {}

    def on_websocket(ws) -> None:
        outgoing: list = []
        incoming: list = []

        def on_sent(frame) -> None:
            outgoing.append(frame)
            if len(outgoing) == 3:
                header, content = json.loads(outgoing[0]), json.loads(outgoing[2])
                if header.get("msgtype") == "PATCH-DOC":
                    sent.extend(content.get("events", []))
                outgoing.clear()

        def on_received(frame) -> None:  # only to learn the models' names: the timing is the page's
            if isinstance(frame, str) and '"PULL-DOC-REPLY"' in frame[:200]:
                incoming[:] = [frame]
            elif len(incoming) in (1, 2):
                incoming.append(frame)
                if len(incoming) == 3:
                    names.update(model_names(json.loads(frame)["doc"]))

        ws.on("framesent", on_sent)
        ws.on("framereceived", on_received)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(timeout_s * 1000)
            await context.add_init_script(RECORD_WEBSOCKET_JS)
            page = await context.new_page()
            page.on("websocket", on_websocket)
            start = time.monotonic()
            await page.goto(url, wait_until="commit")
            await page.locator(FIGURE).first.wait_for(state="attached")
            first_figure_s = time.monotonic() - start
            times = await page.evaluate(PAGE_TIMES_JS)
            await asyncio.sleep(2.0)  # the patches it sends after drawing
            await context.close()
        finally:
            await browser.close()
    if times["opened"] is None or not names:
        raise RuntimeError("the calibrating browser drew a figure but its document was never seen")
    document_ms = _document_arrival_ms(times["messages"])
    client = ClientTimes(before_websocket_s=max(0.0, times["opened"] - times["last_asset"]) / 1000,
                         drawing_s=max(0.0, times["now"] - document_ms) / 1000,
                         patches=rename_models(sent, names))
    client.browser_first_figure_s = first_figure_s
    return client


def run_protocol_load(url: str, readers: int, client: ClientTimes | None = None, timeout_s: float = 240,
                      server_pids: Callable[[], list[int]] | None = None) -> dict:
    """``readers`` protocol readers starting together. Without ``client``: no client time, no patches."""
    from apps.loadtest import _stats, cpu_seconds

    client = client or ClientTimes()
    measured = server_pids is not None
    server_pids = server_pids or (lambda: [])
    report: dict = {"url": url, "readers": readers, "mode": "own machines" if client.browser_first_figure_s is not None else "protocol",
                    "load_before": os.getloadavg(), "client": {"before_websocket_s": client.before_websocket_s,
                                                               "drawing_s": client.drawing_s,
                                                               "patches": len(client.patches)}}

    if client.browser_first_figure_s is not None:
        # The model checked on an idle server: one protocol reader, against the browser measured.
        lone = asyncio.run(protocol_reader(url, client, timeout_s))
        report["client"]["browser_first_figure_s"] = client.browser_first_figure_s
        report["client"]["model_first_figure_s"] = lone.get("estimated_first_figure_s")
        if "estimated_first_figure_s" in lone:  # client work the model does not see (the HTML's parsing, ...)
            client = replace(client, unmodelled_s=max(0.0, client.browser_first_figure_s
                                                      - lone["estimated_first_figure_s"]))
            report["client"]["unmodelled_s"] = client.unmodelled_s

    async def crowd():
        return await asyncio.gather(*(protocol_reader(url, client, timeout_s) for _ in range(readers)))

    cpu0, own0 = cpu_seconds(server_pids), time.process_time()
    results = asyncio.run(crowd())
    report["server_cpu_s"] = cpu_seconds(server_pids) - cpu0 if measured else None
    report["this_process_cpu_s"] = time.process_time() - own0
    for key in ("page_s", "assets_s", "document_s", "estimated_first_figure_s", "patches_s"):
        report[key] = _stats([r[key] for r in results if key in r])
    report["failures"] = [f"reader {i}: {r['failure']}" for i, r in enumerate(results) if "failure" in r]
    report["load_after"] = os.getloadavg()
    return report


def protocol_summary(report: dict) -> str:
    def line(label: str, key: str) -> str:
        s = report[key]
        return f"{label}: median {s['median']:.2f}, p90 {s['p90']:.2f}, max {s['max']:.2f}" if s.get("n") else \
            f"{label}: none"

    n, client = report["readers"], report["client"]
    lines = [f"readers: {n} ({report['mode']}: no browser in the crowd)   server: {report.get('server_args', 'external')}",
             f"load average before: {tuple(round(v, 2) for v in report['load_before'])}, "
             f"after: {tuple(round(v, 2) for v in report['load_after'])}",
             line("page with its session (s)", "page_s"),
             line("+ scripts and styles (s)", "assets_s"),
             line("+ document over the websocket (s)", "document_s")]
    if report["mode"] == "own machines":
        lines.insert(1, f"client time, measured on one browser: {client['before_websocket_s']:.2f} s before the "
                        f"websocket, {client['drawing_s']:.2f} s to draw; {client['patches']} messages replayed")
        if client.get("model_first_figure_s") is not None:
            lines.insert(2, f"check on the idle server: that browser's first figure {client['browser_first_figure_s']:.2f}"
                            f" s; one reader of this model {client['model_first_figure_s']:.2f} s; the shortfall, "
                            f"{client.get('unmodelled_s', 0.0):.2f} s, is added to every estimate below")
        lines.append(line("estimated first figure on the readers' own machines (s)", "estimated_first_figure_s"))
        lines.append(line("+ the browser's messages answered (s)", "patches_s"))
    cpu = report["server_cpu_s"]
    lines.append((f"server CPU: {cpu:.1f} s ({cpu / n:.2f} per reader)" if cpu is not None else
                  "server CPU: not measured (a server this run did not start)")
                 + f"; this client: {report['this_process_cpu_s']:.1f} s")
    lines += [f"  failure: {f}" for f in report["failures"][:10]]
    return "\n".join(lines)
