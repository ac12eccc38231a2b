"""Fetched JSON Web Key Sets, refetched when a token names a key id not seen yet (rotation)."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import httpx
import structlog
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tenant_runtime.auth.errors import AuthError

logger = structlog.get_logger(__name__)

# An unknown kid triggers at most one refetch per this many seconds, so a stream of forged
# tokens cannot make the runtime hammer the key server.
REFETCH_INTERVAL_SECONDS = 10.0


class RemoteKeySet:
    """One JWKS address's keys, cached."""

    def __init__(self, jwks_uri: str, *, timeout: float, what: str) -> None:
        self.jwks_uri = jwks_uri
        self._timeout = timeout
        self._what = what
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0

    def _fetch(self) -> KeySet:
        try:
            response = httpx.get(self.jwks_uri, timeout=self._timeout)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as error:
            raise AuthError(
                f"The {self._what}'s signing keys cannot be read right now; try again shortly.",
                status_code=502,
                log_event="keys.unreachable",
                jwks_uri=self.jwks_uri,
                error=type(error).__name__,
            ) from error
        logger.info("keys.fetched", jwks_uri=self.jwks_uri, kids=[k.kid for k in keys.keys])
        return keys

    def keys_for(self, kid: str | None) -> KeySet:
        """The key set holding `kid`, refetched once if the cached set lacks it."""
        with self._lock:
            if self._keys is None:
                self._keys, self._fetched_at = self._fetch(), time.monotonic()
            known = {key.kid for key in self._keys.keys}
            stale = time.monotonic() - self._fetched_at >= REFETCH_INTERVAL_SECONDS
            if kid is not None and kid not in known and stale:
                logger.info("keys.unknown_kid_refetch", jwks_uri=self.jwks_uri, kid=kid)
                self._keys, self._fetched_at = self._fetch(), time.monotonic()
            return self._keys


class KeySets:
    """RemoteKeySet per address: providers and the control plane each have their own."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._sets: dict[str, RemoteKeySet] = {}

    def get(self, jwks_uri: str, what: str) -> RemoteKeySet:
        with self._lock:
            found = self._sets.get(jwks_uri)
            if found is None:
                found = RemoteKeySet(jwks_uri, timeout=self._timeout, what=what)
                self._sets[jwks_uri] = found
            return found


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read only to pick the key; the signature is checked afterwards."""
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise AuthError(
            "The sign-in token is malformed.", log_event="token.malformed", part="header"
        )
    return header
