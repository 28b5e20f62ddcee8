"""Session builds one at a time, so that 20 readers arriving together are served in turn.

``apps.serve`` installs :func:`gate_session_builds` on the server it starts;
``python -m apps.loadtest --own-machines`` measures the effect (README.md,
"Hosting the dashboard for a class").
"""
from __future__ import annotations

import asyncio
import weakref

SESSION_BUILD_PAUSE_S = 0.05
DOCUMENT_WAIT_MAX_S = 0.25


class SessionBuildGate:
    """Session builds one at a time, with the event loop's other work let through between two.

    Building a reader's session is ~0.45 CPU-s of synchronous Panel and Bokeh work on the
    server's single event loop, and asyncio runs, in one pass, every callback that was ready when
    the pass began. Twenty readers' page requests arrive together, so their builds were ready
    together and ran back to back: ~8 s in which the loop never looked at its sockets. The first
    reader had its page after 0.5 s, but its scripts (even a 4-KB one) and its websocket waited
    for the last build, and so did everybody's. (A lock alone does not help: each build runs to
    its end in one step, so the next one never finds the lock held.)

    Behind this gate a build starts only when

    * ``pause_s`` have passed since the previous build ended: in the pause the loop sends the
      scripts, styles and messages already asked for;
    * and no websocket that was sent its ACK still waits for its document (at most
      ``max_wait_s``): the reader's browser answers an ACK at once with PULL-DOC-REQ, and a build
      started in between would hold that answer back by a whole build, ~0.4 s per round trip.

    Builds queued behind wait on the lock. A lone reader never waits.
    """

    def __init__(self, pause_s: float = SESSION_BUILD_PAUSE_S, max_wait_s: float = DOCUMENT_WAIT_MAX_S):
        self.pause_s = pause_s
        self.max_wait_s = max_wait_s
        self.awaiting_document = weakref.WeakSet()  # websocket handlers sent an ACK, not yet a document
        self._lock = None  # made on first use, in the loop that serves
        self._last_end = float("-inf")

    async def __aenter__(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        await self._lock.acquire()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.max_wait_s
        try:
            while True:
                pause = self._last_end + self.pause_s - loop.time()
                if pause <= 0 and (not self.awaiting_document or loop.time() >= give_up):
                    return
                await asyncio.sleep(max(pause, 0.005))
        except BaseException:  # cancelled while waiting: never keep the lock, or no session is built again
            self._lock.release()
            raise

    async def __aexit__(self, *exc) -> None:
        self._last_end = asyncio.get_running_loop().time()
        self._lock.release()


def gate_session_builds(gate: SessionBuildGate | None = None, doc_handler=None, ws_handler=None) -> SessionBuildGate:
    """Build every page request's session behind one ``SessionBuildGate`` (idempotent; returns the gate).

    The handlers are Panel's page handler and Bokeh's websocket handler (parameters for the tests):
    the websocket handler tells the gate when it sends a reader its ACK, and when the document
    (PULL-DOC-REPLY) or the connection's end follows.
    """
    if doc_handler is None:
        from panel.io.server import DocHandler as doc_handler
    if ws_handler is None:
        from bokeh.server.views.ws import WSHandler as ws_handler

    current = getattr(doc_handler.get_session, "gate", None)
    if current is not None:
        return current
    gate = gate or SessionBuildGate()
    build, send, close = doc_handler.get_session, ws_handler.send_message, ws_handler.on_close

    async def get_session(self):
        async with gate:
            return await build(self)

    async def send_message(self, message):
        msgtype = getattr(message, "msgtype", None)
        if msgtype == "ACK":
            gate.awaiting_document.add(self)
        try:
            return await send(self, message)
        finally:
            if msgtype == "PULL-DOC-REPLY":
                gate.awaiting_document.discard(self)

    def on_close(self):
        gate.awaiting_document.discard(self)
        return close(self)

    get_session.gate = gate
    doc_handler.get_session = get_session
    ws_handler.send_message = send_message
    ws_handler.on_close = on_close
    return gate
