import pytest

from control_plane.tenants.lifecycle import IllegalTransition, TenantState, check_transition


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (TenantState.PENDING, TenantState.PROVISIONING),
        (TenantState.PROVISIONING, TenantState.ACTIVE),
        (TenantState.PROVISIONING, TenantState.FAILED),
        (TenantState.ACTIVE, TenantState.SUSPENDED),
        (TenantState.SUSPENDED, TenantState.ACTIVE),
        (TenantState.ACTIVE, TenantState.DELETING),
        (TenantState.DELETING, TenantState.DELETED),
        (TenantState.DELETING, TenantState.FAILED),
        (TenantState.FAILED, TenantState.PROVISIONING),
        (TenantState.DELETED, TenantState.PROVISIONING),
    ],
)
def test_the_lifecycle_allows(current: TenantState, target: TenantState) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (TenantState.PENDING, TenantState.ACTIVE),
        (TenantState.DELETED, TenantState.ACTIVE),
        (TenantState.FAILED, TenantState.ACTIVE),
        (TenantState.SUSPENDED, TenantState.DELETED),
    ],
)
def test_the_lifecycle_refuses(current: TenantState, target: TenantState) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current} to {target}"):
        check_transition(current, target)
