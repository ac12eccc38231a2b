"""Runtime credentials, the runtime's config document and signed usage reports.

A runtime authenticates with a token derived from the control plane's secret and its tenant
id, so nothing is stored and rotating the secret rotates every runtime's token at the next
reconcile. The same token signs what the runtime sends up (usage reports), Stripe-style:
``t=<unix>,v1=<hex hmac_sha256(token, f"{t}.{body}")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from control_plane.core.errors import DomainError
from control_plane.core.settings import Settings
from control_plane.tenants.models import Tenant

SIGNATURE_TOLERANCE_SECONDS = 300

# Each section of the document a runtime polls: name -> callable(session, tenant).
# A section that has nothing to say returns None; the runtime treats None as "not configured".
ConfigSection = Callable[[Session, Tenant], Any]
CONFIG_SECTIONS: dict[str, ConfigSection] = {}

# Receives the result of an SSO "test connection" that a runtime ran: (session, tenant,
# test_id, result). Set by the identity domain, which owns SSO configuration.
SsoTestResultHandler = Callable[[Session, Tenant, str, dict[str, Any]], None]
SSO_TEST_RESULT_HANDLER: SsoTestResultHandler | None = None

# Receives a verified usage report: (session, tenant, report). Set by billing (seats).
UsageRecorder = Callable[[Session, Tenant, dict[str, Any]], None]
USAGE_RECORDER: UsageRecorder | None = None


class BadSignature(DomainError):
    status_code = 401


def runtime_token(settings: Settings, tenant_id: UUID | str) -> str:
    """The bearer token the runtime of ``tenant_id`` presents to the control plane."""
    return hmac.new(
        settings.session_secret, f"runtime:{tenant_id}".encode(), hashlib.sha256
    ).hexdigest()


def token_matches(settings: Settings, tenant_id: UUID | str, presented: str) -> bool:
    return hmac.compare_digest(runtime_token(settings, tenant_id), presented)


def sign(token: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``; the runtime computes the same."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(token.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify_signature(token: str, body: bytes, header: str, *, now: float | None = None) -> None:
    """Refuse a body whose signature is missing, wrong or older than the tolerance."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        stamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise BadSignature("the report carries no valid X-Backlot-Signature timestamp") from None
    current = time.time() if now is None else now
    if abs(current - stamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise BadSignature("the report's signature is too old; send a fresh report")
    expected = hmac.new(token.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, value) for value in parts.get("v1", [])):
        raise BadSignature("the report's signature does not match its body")


def config_document(session: Session, settings: Settings, tenant: Tenant) -> dict[str, Any]:
    """Everything a runtime reads from the control plane, polled every few seconds."""
    issuer = settings.resolved_public_url
    document: dict[str, Any] = {
        "tenant_id": str(tenant.id),
        "slug": tenant.slug,
        "generation": tenant.generation,
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "sso": None,
    }
    for name, section in CONFIG_SECTIONS.items():
        document[name] = section(session, tenant)
    return document
