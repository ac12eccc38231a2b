"""How API failures are classified: what the reconciler retries and what fails the tenant."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from control_plane.provisioning.drivers.base import DriverError, TransientDriverError
from control_plane.provisioning.drivers.kubernetes.driver import _classify

pytestmark = pytest.mark.k8s


def _api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


@pytest.mark.parametrize("status", [409, 429, 500, 503, 504])
def test_conflicts_throttling_and_server_errors_are_retried(status: int) -> None:
    classified = _classify(_api_error(status, "busy"), "applying Deployment portal")
    assert isinstance(classified, TransientDriverError)


def test_a_broken_connection_is_retried() -> None:
    classified = _classify(urllib3.exceptions.ProtocolError("reset"), "applying Service portal")
    assert isinstance(classified, TransientDriverError)


def test_forbidden_fails_the_tenant_with_the_api_servers_reason() -> None:
    classified = _classify(
        _api_error(403, "exceeded quota: tenant-quota, requested: pods=1"),
        "applying Deployment portal",
    )
    assert isinstance(classified, DriverError)
    assert (classified.reason, classified.message) == (
        "Forbidden",
        "applying Deployment portal: the cluster refused: "
        "exceeded quota: tenant-quota, requested: pods=1",
    )


def test_an_invalid_object_fails_the_tenant_with_the_reason() -> None:
    classified = _classify(
        _api_error(422, 'Deployment.apps "portal" is invalid: spec.replicas: must be >= 0'),
        "applying Deployment portal",
    )
    assert isinstance(classified, DriverError)
    assert classified.reason == "InvalidObject"
    assert classified.message.endswith("spec.replicas: must be >= 0")
