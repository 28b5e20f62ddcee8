"""Serve the dashboard: ``python -m apps.serve [--port 5006] [--address 127.0.0.1] [--show]``.

Binds to localhost by default and accepts websocket connections only from the
host:port it serves (and ``localhost:port``), so a page opened from anywhere
else cannot drive the app. Panel serves its own JavaScript (no CDN); the app
is ``apps.dashboard.create_app``, built fresh for each browser session.
"""
from __future__ import annotations

import argparse
import sys

PATH = "dashboard"


def websocket_origins(address: str, port: int) -> list[str]:
    """The origins allowed to open the app's websocket: the served host and localhost."""
    hosts = [address, "localhost", "127.0.0.1"] if address in ("127.0.0.1", "localhost") else [address, "localhost"]
    out: list[str] = []
    for host in hosts:
        origin = f"{host}:{port}"
        if origin not in out:
            out.append(origin)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m apps.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a browser")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import panel as pn

    from apps.dashboard import TITLE, create_app

    server = pn.serve({PATH: create_app}, port=args.port, address=args.address,
                      websocket_origin=websocket_origins(args.address, args.port),
                      title=TITLE, show=False, start=False, liveness=True)
    # Print only once the socket is bound, so whoever reads this line can connect.
    print(f"Dashboard: http://{args.address}:{args.port}/{PATH}", flush=True)
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
