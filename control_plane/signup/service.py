"""Validating a signup and recording it. Nothing is written unless everything is."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import catalog
from billing import service as billing
from control_plane.core.errors import ValidationFailed
from control_plane.core.security import hash_password
from control_plane.identity.models import Membership, Organization, Role, User
from control_plane.tenants import service as tenants
from control_plane.tenants.models import Tenant

SLUG_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
SLUG_MIN, SLUG_MAX = 3, 40
PASSWORD_MIN = 12
PLANS = {"free": "Free", "team": "Team", "enterprise": "Enterprise"}
FREE_PLANS = frozenset({"free"})


def available_plans(billing_enabled: bool) -> frozenset[str]:
    """Paid plans need Stripe; without it only the free plan can sign up."""
    return frozenset(PLANS) if billing_enabled else FREE_PLANS


# Names that would collide with the product's own hosts or confuse users and support.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "administrator",
        "api",
        "app",
        "apps",
        "assets",
        "auth",
        "backlot",
        "billing",
        "blog",
        "cdn",
        "console",
        "control",
        "dashboard",
        "default",
        "dev",
        "docs",
        "help",
        "internal",
        "kube",
        "kubernetes",
        "login",
        "logout",
        "mail",
        "metrics",
        "news",
        "operator",
        "portal",
        "root",
        "security",
        "signup",
        "sso",
        "staging",
        "static",
        "status",
        "support",
        "system",
        "test",
        "www",
    }
)


@dataclass(frozen=True, slots=True)
class SignupForm:
    organization_name: str
    slug: str
    email: str
    password: str
    plan: str
    signup_token: str


def suggest_slug(name: str) -> str:
    """A DNS-label slug from an organization's name: "Acme Corp." → "acme-corp"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-")


def slug_problem(session: Session, slug: str) -> str | None:
    """Why this slug cannot be used, or None."""
    if len(slug) < SLUG_MIN or len(slug) > SLUG_MAX:
        return f"The address must be {SLUG_MIN} to {SLUG_MAX} characters long."
    if not SLUG_PATTERN.match(slug):
        return (
            "The address may hold only lower-case letters, digits and hyphens, "
            "and must start and end with a letter or digit."
        )
    if "--" in slug:
        return "The address may not contain two hyphens in a row."
    if slug in RESERVED_SLUGS:
        return f"“{slug}” is reserved; please choose another address."
    taken = session.scalar(
        select(func.count()).select_from(Organization).where(Organization.slug == slug)
    )
    if taken:
        return f"“{slug}” is already taken; please choose another address."
    return None


def password_problem(password: str, email: str, slug: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"Use at least {PASSWORD_MIN} characters for the password."
    if len(set(password)) < 5:
        return "That password repeats too few characters; choose a less guessable one."
    lowered = password.lower()
    local_part = email.split("@", 1)[0].lower()
    if (local_part and len(local_part) >= 4 and local_part in lowered) or (
        slug and slug in lowered
    ):
        return "The password must not contain your email name or your portal address."
    return None


def validate(
    session: Session, form: SignupForm, *, billing_enabled: bool = False
) -> tuple[SignupForm, dict[str, str]]:
    """Normalize the form and collect every problem, keyed by field."""
    errors: dict[str, str] = {}
    name = " ".join(form.organization_name.split())
    if not 2 <= len(name) <= 100:
        errors["organization_name"] = "Give your organization a name of 2 to 100 characters."
    slug = form.slug.strip().lower() or suggest_slug(name)
    problem = slug_problem(session, slug)
    if problem:
        errors["slug"] = problem
    email = form.email.strip()
    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        errors["email"] = f"That email address is not valid: {exc}"
    else:
        if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
            errors["email"] = "An account with this email already exists; log in instead."
    problem = password_problem(form.password, email, slug)
    if problem:
        errors["password"] = problem
    if form.plan not in PLANS:
        errors["plan"] = "Choose one of the plans shown."
    elif form.plan not in available_plans(billing_enabled):
        errors["plan"] = (
            f"Billing is not configured on this installation, so the {PLANS[form.plan]} plan "
            "opens for signup soon; choose Free for now."
        )
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", form.signup_token):
        errors["form"] = "This form has expired; reload the page and try again."
    normalized = SignupForm(name, slug, email, form.password, form.plan, form.signup_token)
    return normalized, errors


# How long the form's one-time token may stand in for a login after its first submit.
RESUBMIT_WINDOW = dt.timedelta(minutes=15)


def previous_signup(session: Session, signup_token: str) -> tuple[Tenant, UUID] | None:
    """The tenant and owner an earlier submit of this very form created (a double submit).

    Only recent signups count: the token proves it is the same form, not the same person
    forever.
    """
    organization = session.scalar(
        select(Organization).where(Organization.signup_token == signup_token)
    )
    if organization is None or organization.created_at < dt.datetime.now(dt.UTC) - RESUBMIT_WINDOW:
        return None
    owner = session.scalar(
        select(Membership.user_id).where(
            Membership.organization_id == organization.id, Membership.role == Role.OWNER
        )
    )
    if owner is None:
        return None
    return tenants.tenant_of_organization(session, organization.id), owner


def register(
    session: Session, form: SignupForm, *, runtime_release: str, billing_enabled: bool = False
) -> tuple[User, Tenant]:
    """Create organization, owner, membership, tenant and its outbox message; flush only.

    A paid plan's tenant waits for the payment before it is provisioned.
    """
    normalized, errors = validate(session, form, billing_enabled=billing_enabled)
    if errors:
        raise ValidationFailed(errors)
    try:
        with session.begin_nested():
            organization = Organization(
                name=normalized.organization_name,
                slug=normalized.slug,
                plan=normalized.plan,
                signup_token=normalized.signup_token,
            )
            user = User(email=normalized.email, password_hash=hash_password(normalized.password))
            session.add_all([organization, user])
            session.flush()
            session.add(
                Membership(organization_id=organization.id, user_id=user.id, role=Role.OWNER)
            )
            paid = catalog.plan(normalized.plan).paid
            tenant = tenants.create_tenant(
                session,
                organization,
                runtime_release=runtime_release,
                actor=f"user:{user.email}",
                awaiting_payment=paid,
            )
            if paid:
                billing.open_account(session, organization, tenant, catalog.plan(normalized.plan))
    except IntegrityError as exc:
        # Two signups raced for the same address or email; the loser hears why.
        detail = str(exc.orig).lower()
        if "signup_token" in detail:
            raise ValidationFailed({"form": "This form was already submitted."}) from exc
        if "email" in detail:
            raise ValidationFailed(
                {"email": "An account with this email already exists; log in instead."}
            ) from exc
        if "signup_token" in detail:
            raise ValidationFailed({"form": "This form was already submitted."}) from exc
        raise ValidationFailed(
            {"slug": f"“{normalized.slug}” is already taken; please choose another address."}
        ) from exc
    return user, tenant
