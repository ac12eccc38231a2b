"""Tenants: the desired state of each organization's portal, its status and lifecycle."""
