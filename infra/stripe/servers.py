"""Stripe's stand-ins for the tests, on loopback and free ports.

stripe-mock (Stripe's official OpenAPI-driven mock, built by build.sh) checks request shapes;
localstripe keeps state for customers, subscriptions and invoices. Each test process starts
its own instances, so parallel runs never share state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


class StripeServerUnavailable(RuntimeError):
    pass


def _version() -> str:
    for line in (HERE / "versions.env").read_text().splitlines():
        if line.startswith("STRIPE_MOCK_VERSION="):
            return line.split("=", 1)[1].strip()
    raise StripeServerUnavailable("STRIPE_MOCK_VERSION missing from infra/stripe/versions.env")


def stripe_mock_binary() -> Path:
    cache = Path(os.environ.get("BACKLOT_CACHE_DIR", Path.home() / ".cache" / "backlot"))
    return cache / "stripe-mock" / _version() / "stripe-mock"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait(server: Server, probe: str, timeout: float = 20.0) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise StripeServerUnavailable(
                f"{server.url} exited with {server.process.returncode}: "
                f"{server.log.read_text(errors='replace')[-2000:]}"
            )
        try:
            httpx.get(
                f"{server.url}{probe}", headers={"Authorization": "Bearer sk_test_123"}, timeout=1
            )
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        return server
    server.stop()
    raise StripeServerUnavailable(f"{server.url} did not answer within {timeout:.0f}s")


def start_stripe_mock(workdir: Path) -> Server:
    binary = stripe_mock_binary()
    if not binary.exists():
        # Cached after the first build; a cold build takes seconds.
        built = subprocess.run(
            ["bash", str(HERE / "build.sh")], capture_output=True, text=True, check=False
        )
        if built.returncode != 0 or not binary.exists():
            raise StripeServerUnavailable(
                f"stripe-mock could not be built (run `bash infra/stripe/build.sh`): "
                f"{built.stderr[-2000:]}"
            )
    port = free_port()
    log = workdir / "stripe-mock.log"
    process = subprocess.Popen(
        [str(binary), "-http-port", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return _wait(Server(f"http://127.0.0.1:{port}", process, log), "/v1/customers")


def start_localstripe(workdir: Path) -> Server:
    port = free_port()
    log = workdir / "localstripe.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.stripe.localstripe_server",
            "--port",
            str(port),
            "--state",
            str(workdir / "localstripe.pickle"),
        ],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return _wait(Server(f"http://127.0.0.1:{port}", process, log), "/v1/customers")
