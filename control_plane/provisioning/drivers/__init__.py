"""Runtime drivers: the same verbs against a local process or a Kubernetes namespace."""

from __future__ import annotations

from control_plane.core.settings import Settings
from control_plane.provisioning.drivers.base import RuntimeDriver


def build_driver(settings: Settings) -> RuntimeDriver:
    # Imported on demand: the embedded default never loads the Kubernetes client.
    if settings.runtime_driver == "kubernetes":
        from control_plane.provisioning.drivers.kubernetes.driver import (  # noqa: PLC0415
            KubernetesDriver,
        )

        return KubernetesDriver(settings)
    from control_plane.provisioning.drivers.local import LocalDriver  # noqa: PLC0415

    return LocalDriver(settings)
