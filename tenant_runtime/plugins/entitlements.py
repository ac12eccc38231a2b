"""Verifying the entitlement token the control plane issues (a compact JWS, EdDSA).

Verification is offline: the control plane's public keys (its JWKS) are fetched once and
cached; an unknown ``kid`` (the control plane rotated its key) fetches them again.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["EdDSA"]
TOKEN_TYPE = "entitlements"  # noqa: S105 - the "typ" claim, not a secret

JwksFetcher = Callable[[str], dict[str, Any]]


class EntitlementRefused(Exception):
    """The token is forged, expired, for another tenant, or not an entitlement token."""


@dataclass(frozen=True)
class Entitlements:
    plan: str
    plugins: dict[str, str]  # plugin id -> tier
    seat_limit: int | None
    features: tuple[str, ...]
    issued_at: float
    expires_at: float
    token_id: str


def fetch_jwks(uri: str) -> dict[str, Any]:
    response = httpx.get(uri, timeout=5.0)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


class EntitlementVerifier:
    def __init__(self, tenant_id: str, fetch: JwksFetcher = fetch_jwks) -> None:
        self.tenant_id = tenant_id
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: dict[str, KeySet] = {}

    def _key_set(self, jwks_uri: str, kid: str) -> KeySet:
        with self._lock:
            cached = self._keys.get(jwks_uri)
            if cached is not None and any(k.kid == kid for k in cached.keys):
                return cached
        try:
            fresh = KeySet.import_key_set(self._fetch(jwks_uri))  # type: ignore[arg-type]
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            raise EntitlementRefused(f"the control plane's keys could not be read: {exc}") from exc
        with self._lock:
            self._keys[jwks_uri] = fresh
        if not any(k.kid == kid for k in fresh.keys):
            raise EntitlementRefused(f"the token is signed with an unknown key {kid!r}")
        return fresh

    def verify(
        self, token: str, *, issuer: str, jwks_uri: str, now: float | None = None
    ) -> Entitlements:
        """The token's entitlements; raises ``EntitlementRefused`` with the reason."""
        try:
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError) as exc:
            raise EntitlementRefused("the token is not a compact JWS") from exc
        kid = str(header.get("kid", ""))
        if header.get("alg") not in ALGORITHMS:
            raise EntitlementRefused(f"the token's algorithm {header.get('alg')!r} is not EdDSA")
        keys = self._key_set(jwks_uri, kid)
        try:
            with warnings.catch_warnings():
                # joserfc warns that RFC 9864 prefers "Ed25519"; the contract names EdDSA.
                warnings.simplefilter("ignore")
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except JoseError as exc:
            raise EntitlementRefused(f"the token's signature is not valid: {exc}") from exc
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(time.time() if now is None else now),
            leeway=30,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": f"backlot-runtime:{self.tenant_id}"},
            sub={"essential": True, "value": self.tenant_id},
            exp={"essential": True},
            typ={"essential": True, "value": TOKEN_TYPE},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise EntitlementRefused(f"the token's claims are not valid: {exc}") from exc
        try:
            return Entitlements(
                plan=str(claims.get("plan", "")),
                plugins={str(p["id"]): str(p["tier"]) for p in claims.get("plugins", [])},
                seat_limit=claims.get("seat_limit"),
                features=tuple(str(f) for f in claims.get("features", [])),
                issued_at=float(claims.get("iat", 0)),
                expires_at=float(claims["exp"]),
                token_id=str(claims.get("jti", "")),
            )
        except (KeyError, TypeError) as exc:
            raise EntitlementRefused("the token's plugin list is malformed") from exc
