"""Checking signed JWTs (handoff tickets, ID tokens) with a precise reason for each refusal."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwt import JWTClaimsRegistry

from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.keys import RemoteKeySet, unverified_header


def verify_jwt(
    token: str,
    keys: RemoteKeySet,
    *,
    algorithms: list[str],
    issuer: str,
    audience: str,
    leeway: int,
    what: str,
    now: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Signature, issuer, audience, lifetime (and nonce when given); claims on success."""
    header = unverified_header(token)
    keyset = keys.keys_for(header.get("kid"))
    try:
        decoded = jwt.decode(token, keyset, algorithms=algorithms)
    except BadSignatureError as error:
        raise AuthError(
            f"The {what} has a bad signature; sign in again.",
            log_event="token.bad_signature",
            token=what,
            kid=header.get("kid"),
        ) from error
    except (DecodeError, ValueError, JoseError) as error:
        raise AuthError(
            f"The {what} could not be verified; sign in again.",
            log_event="token.unverifiable",
            token=what,
            kid=header.get("kid"),
            alg=header.get("alg"),
            error=type(error).__name__,
        ) from error
    claims = dict(decoded.claims)
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    registry = JWTClaimsRegistry(now=now or int(time.time()), leeway=leeway, **options)
    try:
        registry.validate(claims)
    except ExpiredTokenError as error:
        raise AuthError(
            f"The {what} has expired; sign in again.",
            log_event="token.expired",
            token=what,
            exp=claims.get("exp"),
        ) from error
    except (InvalidClaimError, MissingClaimError) as error:
        claim = getattr(error, "claim", None)
        raise AuthError(
            f"The {what} was not issued for this portal ({claim} does not match); sign in again.",
            log_event=f"token.wrong_{claim}",
            token=what,
            claim=claim,
            presented=str(claims.get(claim or ""))[:200] if claim != "nonce" else None,
        ) from error
    presented = claims.get("aud")
    audiences = presented if isinstance(presented, list) else [presented]
    if audience not in audiences:
        raise AuthError(
            f"The {what} was issued for another audience, not this portal; sign in again.",
            log_event="token.wrong_aud",
            token=what,
            expected=audience,
            presented=str(presented)[:200],
        )
    return claims
