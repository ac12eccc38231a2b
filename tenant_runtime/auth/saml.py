"""SAML 2.0 login (pysaml2)."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.response import Redirect
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import LoginConfig
from tenant_runtime.auth.errors import AuthError


def begin_saml_login(
    state: State, db_session: Session, config: LoginConfig, *, sso_test_id: str | None = None
) -> Redirect:
    raise AuthError(
        "SAML sign-in is not available in this portal release.",
        status_code=501,
        log_event="saml.unavailable",
    )
