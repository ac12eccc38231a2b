"""What the identity domain plugs into the runtime link: the ``sso`` config section and the
handler for test-connection results."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from control_plane.core.settings import Settings
from control_plane.identity.sso import service as sso
from control_plane.runtime_link import service as runtime_link
from control_plane.tenants.models import Tenant


def install(settings: Settings) -> None:
    """Register the hooks; the section needs ``settings`` to decrypt client secrets."""

    def section(session: Session, tenant: Tenant) -> dict[str, Any] | None:
        return sso.sso_section(session, settings, tenant)

    runtime_link.CONFIG_SECTIONS["sso"] = section
    runtime_link.SSO_TEST_RESULT_HANDLER = sso.record_test_result
