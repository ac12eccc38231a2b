"""Deployment and test-environment tooling (not part of the shipped packages)."""
