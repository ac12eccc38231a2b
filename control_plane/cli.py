"""``backlot``: run the product on its embedded default, migrate, and operate it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click
from sqlalchemy.orm import Session

from billing.cli import billing
from control_plane.core import migrations
from control_plane.core.logging import configure_logging, redact_url
from control_plane.core.settings import Settings, load_settings
from control_plane.fleet.cli import fleet
from control_plane.marketplace.cli import marketplace
from control_plane.provisioning.drivers.local import LocalDriver


@click.group()
def main() -> None:
    """Backlot control plane."""


main.add_command(billing)


@main.command()
def migrate() -> None:
    """Bring the control-plane database schema to the newest migration."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    migrations.upgrade(settings.resolved_database_url)
    click.echo(f"database at head: {redact_url(settings.resolved_database_url)}")


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=os.environ.copy())  # noqa: S603 - our own interpreter and modules


def _stop(processes: list[subprocess.Popen[bytes]], grace_seconds: float = 15.0) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@main.command()
@click.option(
    "--workers/--no-workers", default=True, help="Also run a Celery worker with embedded beat."
)
def run(workers: bool) -> None:
    """Run the whole product on this machine: web, worker and beat, tenant runtimes as processes."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    migrations.upgrade(settings.resolved_database_url)

    python = sys.executable
    processes = [
        _spawn(
            [
                python,
                "-m",
                "uvicorn",
                "control_plane.app:create_app",
                "--factory",
                "--host",
                settings.host,
                "--port",
                str(settings.port),
                "--no-access-log",
            ]
        )
    ]
    if workers:
        processes.append(
            _spawn(
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "control_plane.celery_main",
                    "worker",
                    "--beat",
                    "--loglevel",
                    settings.log_level,
                    "--concurrency",
                    "2",
                    "--hostname",
                    f"backlot@{os.uname().nodename}",
                ]
            )
        )

    stopping = False

    def _request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)

    url = settings.resolved_public_url
    click.echo(
        "\n"
        f"  Backlot is running at {url}\n"
        f"  Sign up for a portal:  {url}/signup\n"
        f"  API reference:         {url}/schema\n"
        f"  Data:                  {settings.resolved_data_dir}\n"
        "  Press Ctrl-C to stop.\n",
        err=True,
    )
    exit_code = 0
    while not stopping:
        for process in processes:
            if process.poll() is not None:
                click.echo(
                    f"a Backlot process exited with {process.returncode}; stopping", err=True
                )
                exit_code = 1
                stopping = True
        time.sleep(0.3)

    click.echo("stopping…", err=True)
    _stop(processes)
    stopped = LocalDriver(settings).stop_all()
    click.echo(f"stopped; {stopped} tenant runtime(s) stopped, their data kept", err=True)
    sys.exit(exit_code)


@contextmanager
def _unit_of_work() -> Iterator[tuple[Session, Settings]]:
    """The configured database in one transaction, for a command that changes stored state."""
    from control_plane.core.database import (  # noqa: PLC0415
        build_engine,
        build_session_factory,
        unit_of_work,
    )
    from control_plane.models import import_all  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    import_all()
    with unit_of_work(build_session_factory(build_engine(settings.resolved_database_url))) as s:
        yield s, settings


@main.command("rotate-signing-key")
def rotate_signing_key() -> None:
    """Sign with a new key from now on; the old one stays in the JWKS until its tokens expire."""
    from control_plane.identity import signing  # noqa: PLC0415

    with _unit_of_work() as (session, settings):
        key = signing.rotate(session, settings)
    click.echo(f"signing with {key.kid}")


@main.command("reencrypt-secrets")
def reencrypt_secrets() -> None:
    """After changing BACKLOT_SECRET_KEY: rewrite stored secrets under it (old keys listed)."""
    from control_plane.identity import rotation  # noqa: PLC0415

    with _unit_of_work() as (session, settings):
        count = rotation.reencrypt_secrets(session, settings)
    click.echo(f"{count} secret(s) now encrypted under the current key")


main.add_command(fleet)
main.add_command(marketplace)
