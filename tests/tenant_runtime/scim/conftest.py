"""Fixtures for SCIM: a portal with a SCIM token set in its SSO section."""

from __future__ import annotations

import hashlib

from tests.tenant_runtime.auth.conftest import (  # noqa: F401 (fixtures)
    app,
    configure_sso,
    control_plane,
    dex,
    portal,
    portal_port,
    runtime_settings,
    static_site,
)

SCIM_TOKEN = "scim-token-of-the-test-tenant"
SCIM_TOKEN_SHA256 = hashlib.sha256(SCIM_TOKEN.encode()).hexdigest()
