"""The runtime's channel to the control plane: its config document down, usage reports up."""

from tenant_runtime.uplink.client import Uplink, UplinkError

__all__ = ["Uplink", "UplinkError"]
