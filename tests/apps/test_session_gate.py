"""apps.session_gate: session builds one at a time, with the loop's other work let through between two."""
from __future__ import annotations

import asyncio

from apps.session_gate import SessionBuildGate, gate_session_builds


def _run(coroutine):
    """``asyncio.run`` in a thread of its own: Playwright's sync API (browser test modules in the same
    worker) keeps an event loop running in this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _busy(seconds: float) -> None:
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _run_builds(gate, names, quick_after_s=0.0):
    """Builds entering ``gate`` in one pass of the loop (as 20 page requests read together do), each
    0.1 s of synchronous work, plus a quick task (a script request) made ready meanwhile."""
    log = []

    async def build(name):
        async with gate:
            loop = asyncio.get_running_loop()
            log.append((name, "start", loop.time()))
            _busy(0.1)
            log.append((name, "end", loop.time()))

    async def quick():
        await asyncio.sleep(quick_after_s)
        log.append(("quick", "done", asyncio.get_running_loop().time()))

    async def main():
        await asyncio.gather(*(build(n) for n in names), quick())

    _run(main())
    return {(name, what): t for name, what, t in log}


def test_without_the_gate_builds_ready_together_starve_the_loop():
    # Why the gate exists: the builds run back to back, and the quick task only after the last.
    class NoGate:
        async def __aenter__(self):
            return None

        async def __aexit__(self, *exc):
            return None

    t = _run_builds(NoGate(), ["a", "b", "c"])
    assert t[("quick", "done")] >= t[("c", "end")]


def test_the_gate_lets_the_loop_work_between_builds():
    gate = SessionBuildGate(pause_s=0.05)
    t = _run_builds(gate, ["a", "b", "c"])
    assert t[("a", "start")] < t[("a", "end")] <= t[("b", "start")] < t[("b", "end")] <= t[("c", "start")]
    assert t[("b", "start")] - t[("a", "end")] >= 0.045 and t[("c", "start")] - t[("b", "end")] >= 0.045
    assert t[("quick", "done")] < t[("b", "start")]  # served in the pause after the first build


def test_a_lone_build_never_waits():
    gate = SessionBuildGate(pause_s=10.0)

    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with gate:
            return loop.time() - start

    assert _run(main()) < 1.0  # not the 10-s pause


def test_a_build_waits_for_a_document_already_asked_for_but_not_forever():
    class Socket:  # stands in for a websocket handler sent its ACK
        pass

    async def main(release_after_s):
        gate = SessionBuildGate(pause_s=0.0, max_wait_s=1.0)
        socket = Socket()
        gate.awaiting_document.add(socket)
        loop = asyncio.get_running_loop()
        if release_after_s is not None:
            loop.call_later(release_after_s, gate.awaiting_document.discard, socket)
        start = loop.time()
        async with gate:
            return loop.time() - start

    assert 0.09 <= _run(main(0.1)) < 0.8  # started once the document was sent
    assert 0.99 <= _run(main(None)) < 5.0  # a reader who never pulls holds builds back 1 s at most


def test_gating_is_installed_once_and_tracks_the_websocket_handshake():
    from types import SimpleNamespace

    log = []

    class Page:
        async def get_session(self):
            log.append("built")
            return "session"

    class Socket:
        async def send_message(self, message):
            log.append(message.msgtype)

        def on_close(self):
            log.append("closed")

    gate = gate_session_builds(doc_handler=Page, ws_handler=Socket)
    assert gate_session_builds(doc_handler=Page, ws_handler=Socket) is gate  # not wrapped twice
    page, socket, other = Page(), Socket(), Socket()

    async def main():
        assert await page.get_session() == "session"
        await socket.send_message(SimpleNamespace(msgtype="ACK"))
        await other.send_message(SimpleNamespace(msgtype="ACK"))
        assert set(gate.awaiting_document) == {socket, other}
        await socket.send_message(SimpleNamespace(msgtype="PULL-DOC-REPLY"))
        other.on_close()  # left before its document: no longer waited for
        assert not gate.awaiting_document

    _run(main())
    assert log == ["built", "ACK", "ACK", "PULL-DOC-REPLY", "closed"]


def test_a_build_cancelled_while_it_waits_does_not_keep_the_gate_shut():
    async def main():
        gate = SessionBuildGate(pause_s=0.2)
        async with gate:
            pass  # the previous build: the next one must pause

        async def waiting_build():
            async with gate:
                raise AssertionError("cancelled before it started")

        task = asyncio.create_task(waiting_build())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def later_build():
            async with gate:  # still gets in, after what is left of the pause
                return loop.time() - start

        return await asyncio.wait_for(later_build(), 5.0)  # a gate left shut: TimeoutError

    assert _run(main()) < 1.0
