"""The built-in plugins every runtime image ships, written into the registry.

Seeded by an idempotent step at startup (and ``backlot marketplace seed``), not by a data
migration: the list follows the runtime releases and grows with them, and a seed only adds
what is missing, so an operator's later edits (a deprecated version, a new price) stay.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from control_plane.marketplace import service as marketplace
from control_plane.marketplace.models import Tier
from control_plane.marketplace.plans import plans_including
from control_plane.marketplace.service import PluginDraft, VersionDraft

PUBLISHER = "Backlot"
FIRST_RELEASES = ">=0.1,<1"

BUILTIN: list[tuple[PluginDraft, VersionDraft]] = [
    (
        PluginDraft(
            key="kubernetes",
            name="Kubernetes",
            description="The workloads of each entity, found by its kubernetes-id or "
            "label-selector annotation, read live from your cluster.",
            publisher=PUBLISHER,
            tier=Tier.FREE,
        ),
        VersionDraft("1.0.0", FIRST_RELEASES, ("catalog:read", "kubernetes:read")),
    ),
    (
        PluginDraft(
            key="cicd",
            name="CI/CD status",
            description="Pipeline runs pushed by your CI system through a signed webhook, "
            "shown per entity.",
            publisher=PUBLISHER,
            tier=Tier.FREE,
            generated_secrets=("webhook_secret",),
        ),
        VersionDraft("1.0.0", FIRST_RELEASES, ("catalog:read", "webhook:receive")),
    ),
    (
        PluginDraft(
            key="cost",
            name="Cloud cost",
            description="Costs per entity and per team from an uploaded or pushed cost report "
            "(CSV or JSON).",
            publisher=PUBLISHER,
            tier=Tier.FREE,
        ),
        VersionDraft("1.0.0", FIRST_RELEASES, ("catalog:read",)),
    ),
    (
        PluginDraft(
            key="techdocs",
            name="TechDocs",
            description="Markdown documentation from each entity's source, rendered and "
            "searchable.",
            publisher=PUBLISHER,
            tier=Tier.FREE,
        ),
        VersionDraft("1.0.0", FIRST_RELEASES, ("catalog:read", "source:read")),
    ),
    (
        PluginDraft(
            key="scorecards",
            name="Scorecards",
            description="Checks over your catalog (owner, description, lifecycle, docs, ...) "
            "scored bronze, silver and gold, with a view per team.",
            publisher=PUBLISHER,
            tier=Tier.PREMIUM,
            price_lookup_key="addon_scorecards_monthly",
            included_in_plans=tuple(plans_including("scorecards")),
        ),
        VersionDraft("1.0.0", FIRST_RELEASES, ("catalog:read",)),
    ),
]


def seed(session: Session) -> int:
    """Add the built-in plugins and versions that are missing; returns how many rows."""
    added = 0
    for plugin_draft, version_draft in BUILTIN:
        plugin = marketplace.find_plugin(session, plugin_draft.key)
        if plugin is None:
            plugin = marketplace.save_plugin(session, plugin_draft)
            added += 1
        if marketplace.find_version(session, plugin, version_draft.version) is None:
            marketplace.publish_version(session, plugin, version_draft)
            added += 1
    return added
