"""Every table of the control plane, imported in one place for Alembic and the app."""

from __future__ import annotations


def import_all() -> None:
    from billing import models as _billing  # noqa: F401, PLC0415
    from control_plane.audit import models as _audit  # noqa: F401, PLC0415
    from control_plane.fleet import models as _fleet  # noqa: F401, PLC0415
    from control_plane.identity import models as _identity  # noqa: F401, PLC0415
    from control_plane.marketplace import models as _marketplace  # noqa: F401, PLC0415
    from control_plane.outbox import models as _outbox  # noqa: F401, PLC0415
    from control_plane.provisioning import models as _provisioning  # noqa: F401, PLC0415
    from control_plane.tenants import models as _tenants  # noqa: F401, PLC0415
