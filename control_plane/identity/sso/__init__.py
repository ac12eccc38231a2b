"""Tenant single sign-on: configuration, test connection, enabling and enforcement."""
