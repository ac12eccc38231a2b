"""SCIM 2.0 provisioning of the portal's users and groups (RFC 7643, RFC 7644)."""
