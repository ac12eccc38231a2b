"""The local driver's stand-in for a suspended portal: it answers on the portal's port.

On one machine there is no ingress to re-route, and the control plane cannot listen on the
portal's port, so the local driver starts this small process there while the portal is
suspended. Every request gets the control plane's suspended page for the portal (fetched per
request, so it says what holds the portal now), with the page's 503 status. If the control
plane cannot be reached it still answers, with a short plain page.

Run as ``python path/to/suspended_page.py --port N --page URL`` (the local driver runs it by
path). Standard library only: it must start in well under a second and hold little memory.
"""

from __future__ import annotations

import argparse
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

FALLBACK = (
    b"<!doctype html><meta charset=utf-8><title>Portal suspended</title>"
    b"<h1>This portal is suspended</h1><p>Its data is kept. Please try again later.</p>"
)
FETCH_TIMEOUT_SECONDS = 3.0


def fetch_page(url: str) -> bytes:
    """The control plane's page; it answers 503 on purpose, so the body is read from the error."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - our own control plane's URL
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return exc.read()
        return FALLBACK
    except (urllib.error.URLError, TimeoutError, OSError):
        return FALLBACK


def handler_for(page_url: str) -> type[BaseHTTPRequestHandler]:
    class SuspendedHandler(BaseHTTPRequestHandler):
        server_version = "backlot-suspended"

        def _answer(self, with_body: bool) -> None:
            body = fetch_page(page_url)
            self.send_response(503)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Retry-After", "3600")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def do_POST(self) -> None:
            self._answer(with_body=True)

        def log_message(self, format: str, *args: object) -> None:
            # Quiet: the runtime's log file is not this process's to fill.
            return

    return SuspendedHandler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--page", required=True, help="the control plane's suspended page URL")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(args.page))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
