"""Provisioning: the reconciler that brings each tenant's runtime to its spec, and its drivers."""
