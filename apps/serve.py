"""Serve the dashboard: ``python -m apps.serve [--port 5006] [--address 127.0.0.1] [--show]``.

Safe by default:

* it binds to localhost, and answers only requests whose ``Host`` header names
  this machine (``localhost``, ``127.0.0.1``, ``[::1]``, the bound address) or a
  name given with ``--public-host``. Anything else gets 403, the websocket
  upgrade included. Why check ``Host`` ourselves: a page on another domain can
  make its own name resolve to 127.0.0.1 (DNS rebinding); its requests then
  carry ``Host: evil.example`` and, for the websocket, ``Origin:
  http://evil.example`` — and Tornado skips its origin check when Origin equals
  Host, so the websocket origin allow-list alone lets it in;
* websocket connections are accepted only from the served origins;
* nothing is fetched from a CDN (Panel serves its own JavaScript and CSS, and
  ``apps.dashboard`` pins every stylesheet to the local copy).

For a class: one process serves 20 readers arriving together in turn, because
sessions are built one at a time (``apps.session_gate``) and the first
session's one-time costs are paid at start (``apps.dashboard.warm_session``).
``--num-procs N`` forks N server processes on one port (each session lives in
one process; the operating system spreads connections), and ``--threads N``
gives each process N threads for callbacks. See README.md, "Hosting the
dashboard for a class".
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

from tornado.routing import Matcher, Rule
from tornado.web import RequestHandler

from apps.session_gate import gate_session_builds

PATH = "dashboard"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
# A session whose browser has not opened its websocket within this time is dropped; the browser
# then gets a second, freshly built session. Bokeh's 15 s is too short when 20 readers arrive
# together on two cores: every late session would be built twice.
UNUSED_SESSION_LIFETIME_S = 120.0
BOKEH_CHECK_UNUSED_MS = 17_000
STATIC_ROUTE = "dashboard-static"          # apps/static: the dashboard's own script and style sheet
FIGURES_STATIC_ROUTE = "postlib-static"     # postlib/viz/static: the figures' narrow-screen script, when present

log = logging.getLogger("apps.serve")


def allowed_host_names(address: str, public_hosts: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The ``Host`` names (port stripped, lower case) that this server answers."""
    names = set(LOCAL_NAMES)
    if address not in WILDCARD_ADDRESSES:
        names.add(address.lower())
        if ":" in address:  # an IPv6 literal arrives in brackets in a Host header
            names.add(f"[{address.lower()}]")
    for host in public_hosts:
        names.add(split_host(host)[0])
    return names


def split_host(host: str) -> tuple[str, int | None]:
    """``'Example.org:8080'`` → ``('example.org', 8080)``; ``'[::1]:80'`` → ``('[::1]', 80)``."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[:end + 1], host[end + 1:]
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, int(port) if port.isdigit() else None
    return host, None


def websocket_origins(address: str, port: int, public_hosts: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The origins allowed to open the app's websocket: the served host, localhost, and public hosts.

    A public host is taken as given: ``class.example.org`` (default port, behind a proxy on 80/443)
    or ``class.example.org:5006``.
    """
    hosts = [address, "localhost", "127.0.0.1"] if address in ("127.0.0.1", "localhost") else [address, "localhost"]
    out: list[str] = []
    for host in hosts:
        if host in WILDCARD_ADDRESSES:
            continue
        origin = f"{host}:{port}"
        if origin not in out:
            out.append(origin)
    for host in public_hosts:
        if host not in out:
            out.append(host)
    return out


class ForeignHostMatcher(Matcher):
    """Matches a request whose Host header is not one of ``names`` (so that it can be refused)."""

    def __init__(self, names: set[str]):
        self.names = frozenset(names)

    def match(self, request):
        return None if request.host_name in self.names else {}


class ForeignHostHandler(RequestHandler):
    """403 for every method: the request named a host this server does not serve."""

    def prepare(self):
        log.warning("refused a request for Host %r (%s %s)", self.request.host, self.request.method,
                    self.request.uri)
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("403: this dashboard answers only requests for its own host name "
                    "(start it with --public-host NAME to serve NAME).\n")


def refuse_foreign_hosts(tornado_app, names: set[str]) -> None:
    """Put a Host check in front of every route of ``tornado_app`` (HTTP and websocket alike)."""
    rule = tornado_app.default_router.process_rule(Rule(ForeignHostMatcher(names), ForeignHostHandler))
    tornado_app.default_router.rules.insert(0, rule)


def _reader_left(context: dict) -> bool:
    """True for an error that only says a reader's websocket closed before an update reached it."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    return isinstance(context.get("exception"), (WebSocketClosedError, StreamClosedError))


def ignore_closed_websockets(loop) -> None:
    """Make ``loop`` drop, at debug level, the errors of updates sent to a reader who has left.

    A reader who closes the tab while the server is sending an update (a slider's new figure,
    a measurement's progress) leaves Panel's and Tornado's write tasks with a
    ``WebSocketClosedError`` that no one awaits; asyncio then logs "Task exception was never
    retrieved" with a traceback. Nothing is lost — the reader is gone — so those are logged at
    debug level; every other error still reaches the loop's default handler.
    """
    previous = loop.get_exception_handler()

    def handler(the_loop, context):
        if _reader_left(context):
            log.debug("an update was not delivered: its reader had left (%s)", context.get("message"))
            return
        if previous is not None:
            previous(the_loop, context)
        else:
            the_loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def session_already_gone(exc_info) -> bool:
    """True when ``exc_info`` is Bokeh's assertion that a connection still has its session
    (``bokeh/server/connection.py``, ``ServerConnection.session``).

    A reader who leaves while a slider's messages are in flight can have its session detached before
    those messages, or the websocket's own close, are handled; Bokeh then asserts instead of
    dropping them. The reader is gone and nothing is lost.
    """
    if not exc_info or exc_info is True or not isinstance(exc_info[1], AssertionError):
        return False
    tb = exc_info[2]
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    code = tb.tb_frame.f_code
    return code.co_name == "session" and code.co_filename.replace("\\", "/").endswith("bokeh/server/connection.py")


class DropLeftReaders(logging.Filter):
    """Logs Bokeh's "no session" assertions for a reader who has left at debug level, under this module's
    logger, instead of as errors (``bokeh.server.protocol_handler``, ``tornado.application``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if session_already_gone(record.exc_info):
            log.debug("a message or close of a reader who had left was dropped (%s)", record.getMessage()[:80])
            return False
        return True


LEFT_READER_LOGGERS = ("bokeh.server.protocol_handler", "tornado.application")


def drop_left_reader_errors() -> None:
    for name in LEFT_READER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropLeftReaders) for f in logger.filters):
            logger.addFilter(DropLeftReaders())


def die_with_parent() -> bool:
    """In a process forked by ``--num-procs``, ask Linux to end it when the parent ends.

    Tornado's parent process only watches its workers; stopped with SIGTERM it exits alone and
    the workers would go on serving. Returns True when the request was made (Linux only).
    """
    import ctypes
    import ctypes.util
    import signal

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apps.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--public-host", action="append", default=[], metavar="NAME[:PORT]",
                        help="a host name (as readers type it) this server may answer besides localhost; "
                             "repeat for several. Needed for any deliberate deployment on a network.")
    parser.add_argument("--num-procs", type=int, default=1,
                        help="server processes sharing the port (default 1; 0 = one per CPU core)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per process for building sessions and running callbacks "
                             "(Panel's config.nthreads; default: none, everything on the event loop)")
    parser.add_argument("--unused-session-lifetime", type=float, default=UNUSED_SESSION_LIFETIME_S,
                        metavar="SECONDS", help="drop a session whose browser has not connected within this time "
                                                f"(default {UNUSED_SESSION_LIFETIME_S:.0f})")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.num_procs < 0:
        parser.error(f"--num-procs must be >= 0, got {args.num_procs}")
    if not args.unused_session_lifetime > 0:
        parser.error(f"--unused-session-lifetime must be > 0, got {args.unused_session_lifetime}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    for host in args.public_host:
        name, _ = split_host(host)
        if not name or "/" in host or " " in host:
            parser.error(f"--public-host takes a host name like class.example.org[:8080], got {host!r}")
    if args.address in WILDCARD_ADDRESSES and not args.public_host:
        print(f"Note: --address {args.address} listens on every interface, but only requests for localhost are "
              "answered; add --public-host NAME for the name readers will use.", file=sys.stderr)
    elif not _is_address(args.address) and args.address != "localhost":
        args.public_host.append(args.address)  # binding to a name: that name is served
    return args


def session_lifetime_options(seconds: float) -> dict[str, int]:
    """Bokeh's options for dropping unused sessions: the lifetime, and a check at least twice as often."""
    lifetime_ms = max(1, int(seconds * 1000))
    return {"unused_session_lifetime_milliseconds": lifetime_ms,
            "check_unused_sessions_milliseconds": max(1, min(BOKEH_CHECK_UNUSED_MS, lifetime_ms // 2))}


def static_dirs() -> dict[str, str]:
    """Files the dashboard serves itself: ``apps/static``, and ``postlib/viz/static`` when the package ships it."""
    import postlib.viz

    dirs = {STATIC_ROUTE: str(Path(__file__).resolve().parent / "static")}
    figures = Path(postlib.viz.__file__).resolve().parent / "static"
    if figures.is_dir():
        dirs[FIGURES_STATIC_ROUTE] = str(figures)
    return dirs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import panel as pn

    if args.threads:
        pn.config.nthreads = args.threads
    from apps.dashboard import TITLE, create_app, warm_session, warm_up

    server = pn.serve({PATH: create_app}, port=args.port, address=args.address,
                      websocket_origin=websocket_origins(args.address, args.port, args.public_host),
                      title=TITLE, show=False, start=False, liveness=True, num_procs=args.num_procs,
                      static_dirs=static_dirs(), **session_lifetime_options(args.unused_session_lifetime))
    # With --num-procs > 1 every forked process runs the lines below on its own copy of the app.
    from tornado.process import task_id

    if task_id() is not None:
        die_with_parent()
    refuse_foreign_hosts(server._tornado, allowed_host_names(args.address, args.public_host))
    ignore_closed_websockets(server.io_loop.asyncio_loop)
    drop_left_reader_errors()
    gate_session_builds()
    # Build every page once (in each process), so the first readers find the figures cached; the
    # socket is bound already, and connections wait in its backlog until the loop starts.
    warm_up()
    warm_session()
    # Print only once the socket is bound, so whoever reads this line can connect.
    local = "127.0.0.1" if args.address in WILDCARD_ADDRESSES else args.address
    print(f"Dashboard: http://{local}:{args.port}/{PATH}", flush=True)
    for host in args.public_host:
        print(f"Also served as: http://{host if ':' in host else f'{host}:{args.port}'}/{PATH}", flush=True)
    if args.show:
        server.io_loop.add_callback(server.show, f"/{PATH}")
    server.start()
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
