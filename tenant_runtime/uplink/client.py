"""Polls the control plane for this runtime's config document; sends signed reports up.

The runtime keeps serving with the last document it saw when the control plane is away:
sections change only when a fetch succeeds. Each section's subscribers are called once with
the first document and then whenever that section changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from tenant_runtime.core.settings import RuntimeSettings

log = structlog.get_logger(__name__)

Subscriber = Callable[[Any], None]


class UplinkError(Exception):
    """The control plane could not be reached or refused the call."""


def signature(token: str, body: bytes, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(token.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


class Uplink:
    def __init__(self, settings: RuntimeSettings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self.standalone = not settings.control_plane_url
        self._token = settings.control_plane_token.get_secret_value()
        self._client = httpx.Client(
            base_url=settings.control_plane_url.rstrip("/") + "/internal/v1/runtime",
            headers={
                "authorization": f"Bearer {self._token}",
                "x-backlot-tenant": settings.tenant_id,
            },
            timeout=httpx.Timeout(5.0),
            transport=transport,
        )
        self._lock = threading.RLock()
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._sections: dict[str, Any] = {}
        self._seen: set[str] = set()
        self._document: dict[str, Any] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_success: float | None = None

    # -- reading the document ------------------------------------------------------------

    @property
    def document(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._document)

    def section(self, name: str) -> Any:
        with self._lock:
            return self._sections.get(name)

    def subscribe(self, name: str, callback: Subscriber) -> None:
        """Call ``callback`` with the section now (if known) and on every change of it."""
        with self._lock:
            self._subscribers.setdefault(name, []).append(callback)
            known = name in self._seen
            value = self._sections.get(name)
        if known or self.standalone:
            callback(value)

    def fetch_config(self) -> dict[str, Any]:
        if self.standalone:
            return {}
        try:
            response = self._client.get("/config")
        except httpx.HTTPError as exc:
            raise UplinkError(f"the control plane is unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise UplinkError(f"the control plane answered {response.status_code}")
        document: dict[str, Any] = response.json()
        return document

    def refresh_now(self) -> bool:
        """Fetch the document and notify subscribers of changed sections; False if it failed."""
        try:
            document = self.fetch_config()
        except UplinkError as exc:
            log.warning("uplink.refresh_failed", error=str(exc))
            return False
        changed: list[tuple[str, Any]] = []
        with self._lock:
            self._document = document
            for name, value in document.items():
                if name not in self._seen or self._sections.get(name) != value:
                    changed.append((name, value))
                self._sections[name] = value
                self._seen.add(name)
            self.last_success = time.monotonic()
            callbacks = [
                (cb, value) for name, value in changed for cb in self._subscribers.get(name, [])
            ]
        for callback, value in callbacks:
            try:
                callback(value)
            except Exception:
                # One section's consumer failing must not stop the others from updating.
                log.exception("uplink.subscriber_failed")
        return True

    # -- background polling --------------------------------------------------------------

    def start(self) -> None:
        if self.standalone or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, name="uplink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.refresh_now()
            self._wake.wait(self.settings.config_refresh_seconds)
            self._wake.clear()

    # -- sending up ----------------------------------------------------------------------

    def _post(self, path: str, payload: dict[str, Any], *, signed: bool = False) -> None:
        if self.standalone:
            raise UplinkError("this runtime has no control plane to report to")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        if signed:
            headers["x-backlot-signature"] = signature(self._token, body)
        try:
            response = self._client.post(path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise UplinkError(f"the control plane is unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise UplinkError(f"the control plane answered {response.status_code}: {response.text}")

    def report_usage(self, period: str, active_users: int, provisioned_users: int) -> None:
        self._post(
            "/usage",
            {
                "period": period,
                "active_users": active_users,
                "provisioned_users": provisioned_users,
                "reported_at": dt.datetime.now(dt.UTC).isoformat(),
            },
            signed=True,
        )

    def post_sso_test_result(self, test_id: str, result: dict[str, Any]) -> None:
        self._post(f"/sso-tests/{test_id}", result)
