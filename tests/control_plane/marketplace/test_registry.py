"""The registry and installs: what is refused, and why, before anything reaches a runtime."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit.models import AuditEntry
from control_plane.core.errors import Conflict
from control_plane.core.settings import Settings
from control_plane.marketplace import purchases
from control_plane.marketplace import service as marketplace
from control_plane.marketplace.entitlements import entitlement_content, plugins_section
from control_plane.marketplace.errors import Incompatible, NotEntitled, PurchasesUnavailable
from control_plane.marketplace.models import Plugin, Tier
from control_plane.marketplace.seed import seed
from control_plane.tenants.models import Tenant
from tests.control_plane.factories import make_tenant

pytestmark = [pytest.mark.marketplace, pytest.mark.integration]


@pytest.fixture
def tenant(db_session: Session) -> Tenant:
    _, _, tenant = make_tenant(db_session)
    seed(db_session)
    return tenant


@pytest.fixture
def plugin(db_session: Session) -> Plugin:
    """A third-party plugin with one version for today's runtimes and one for tomorrow's."""
    plugin = marketplace.save_plugin(
        db_session,
        marketplace.PluginDraft(
            key=f"acme-{uuid.uuid4().hex[:8]}",
            name="Acme dashboards",
            description="Dashboards",
            publisher="Acme",
            tier=Tier.FREE,
        ),
    )
    marketplace.publish_version(db_session, plugin, marketplace.VersionDraft("1.0.0", ">=0.1,<1"))
    marketplace.publish_version(db_session, plugin, marketplace.VersionDraft("2.0.0", ">=2.0"))
    return plugin


def test_a_version_for_another_runtime_release_is_refused_with_the_reason(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    with pytest.raises(
        Incompatible, match=r"supports runtime releases >=2.0; this portal runs 0.1.0"
    ):
        marketplace.install(db_session, tenant, plugin, actor="user:t", version="2.0.0")


def test_a_deprecated_version_is_refused_with_the_reason(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    marketplace.deprecate_version(db_session, plugin, "1.0.0", "leaks memory")
    with pytest.raises(Incompatible, match="deprecated: leaks memory"):
        marketplace.install(db_session, tenant, plugin, actor="user:t", version="1.0.0")


def test_without_a_version_the_newest_compatible_one_is_installed(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    assert marketplace.install(db_session, tenant, plugin, actor="user:t").version == "1.0.0"


def test_an_upgrade_to_an_incompatible_version_is_refused(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    marketplace.install(db_session, tenant, plugin, actor="user:t")
    with pytest.raises(Incompatible, match=r"runtime releases >=2\.0"):
        marketplace.upgrade(db_session, tenant, plugin, actor="user:t", version="2.0.0")


def test_a_premium_plugin_is_refused_without_entitlement(
    db_session: Session, tenant: Tenant
) -> None:
    scorecards = marketplace.get_plugin(db_session, "scorecards")
    with pytest.raises(NotEntitled, match="premium plugin: buy it"):
        marketplace.install(db_session, tenant, scorecards, actor="user:t")


def test_the_token_lists_premium_plugins_only_when_the_plan_includes_them(
    db_session: Session, tenant: Tenant
) -> None:
    before = {p["id"] for p in entitlement_content(db_session, tenant)["plugins"]}
    tenant.plan = "enterprise"
    after = {p["id"] for p in entitlement_content(db_session, tenant)["plugins"]}
    assert (("scorecards" in before), ("scorecards" in after)) == (False, True)


def test_a_plugins_config_is_stored_encrypted_and_reaches_the_runtime_in_clear(
    db_session: Session, tenant: Tenant, settings: Settings
) -> None:
    kubernetes = marketplace.get_plugin(db_session, "kubernetes")
    config = {"kubeconfig": "apiVersion: v1\nusers: [{user: {token: s3cr3t-token}}]"}
    row = marketplace.install(
        db_session, tenant, kubernetes, actor="user:t", config=config, settings=settings
    )
    section = plugins_section(settings)(db_session, tenant)
    assert "s3cr3t-token" not in json.dumps(row.config)
    assert section["installed"] == [{"id": "kubernetes", "version": "1.0.0", "config": config}]


def test_installing_twice_is_a_conflict(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    marketplace.install(db_session, tenant, plugin, actor="user:t")
    with pytest.raises(Conflict, match="already installed"):
        marketplace.install(db_session, tenant, plugin, actor="user:t")


def test_install_and_uninstall_are_recorded(
    db_session: Session, tenant: Tenant, plugin: Plugin
) -> None:
    marketplace.install(db_session, tenant, plugin, actor="user:ada")
    marketplace.uninstall(db_session, tenant, plugin, actor="user:ada")
    events = db_session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.tenant_id == tenant.id, AuditEntry.action.like("plugin.%"))
        .order_by(AuditEntry.created_at)
    ).all()
    assert list(events) == ["plugin.installed", "plugin.uninstalled"]


def test_buying_without_a_billing_gateway_says_purchases_are_not_available(
    db_session: Session, tenant: Tenant
) -> None:
    scorecards = marketplace.get_plugin(db_session, "scorecards")
    with pytest.raises(PurchasesUnavailable, match="premium purchases are not available yet"):
        purchases.buy(db_session, tenant, scorecards, actor="user:t")


def test_the_seed_is_idempotent_and_keeps_an_operators_deprecation(
    db_session: Session, tenant: Tenant
) -> None:
    cicd = marketplace.get_plugin(db_session, "cicd")
    marketplace.deprecate_version(db_session, cicd, "1.0.0", "replaced")
    assert seed(db_session) == 0
    assert marketplace.find_version(db_session, cicd, "1.0.0").deprecated_at is not None  # type: ignore[union-attr]
