"""SAML 2.0 login through pysaml2 (xmlsec1 checks the signatures).

The portal is a service provider with its metadata at `/auth/saml/metadata`. It requires
signed assertions whatever the section says, accepts only responses to requests it sent
(no unsolicited responses), and leaves signature checking to pysaml2 and xmlsec1, which
verify the signature on the very element whose content is read (no signature wrapping).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from authlib.common.security import generate_token
from litestar.datastructures import State
from litestar.response import Redirect
from sqlalchemy.orm import Session

from tenant_runtime.auth.config import LoginConfig, SamlSettings
from tenant_runtime.auth.errors import AuthError
from tenant_runtime.auth.models import LoginAttempt
from tenant_runtime.auth.service import utcnow

if TYPE_CHECKING:
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

logger = structlog.get_logger(__name__)

LOGIN_ATTEMPT_LIFETIME = timedelta(minutes=10)


class XmlsecMissing(RuntimeError):
    """The xmlsec1 binary pysaml2 needs is not installed."""


def xmlsec_binary() -> str:
    found = shutil.which("xmlsec1")
    if found is None:
        raise XmlsecMissing("xmlsec1 is not installed (Debian package `xmlsec1`)")
    return found


@dataclass(frozen=True)
class SamlIdentity:
    name_id: str
    email: str
    name: str | None
    groups: list[str]
    attributes: dict[str, list[str]]


class SamlServiceProvider:
    """pysaml2 clients for the current IdP metadata, rebuilt when the metadata changes."""

    def __init__(self, portal_url: str, *, leeway: int) -> None:
        self.portal_url = portal_url
        self._leeway = leeway
        self._lock = threading.Lock()
        self._clients: dict[str, Saml2Client] = {}

    @property
    def entity_id(self) -> str:
        return f"{self.portal_url}/auth/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.portal_url}/auth/saml/acs"

    def _config(self, idp_metadata_xml: str | None) -> SPConfig:
        # pysaml2 takes seconds to import: only portals that use SAML pay for it.
        from saml2 import BINDING_HTTP_POST  # noqa: PLC0415
        from saml2.config import SPConfig  # noqa: PLC0415
        from saml2.saml import NAMEID_FORMAT_EMAILADDRESS  # noqa: PLC0415

        config = SPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]
                        },
                        # Required whatever the section says: an unsigned assertion is refused.
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "allow_unsolicited": False,
                        "authn_requests_signed": False,
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    }
                },
                "metadata": {"inline": [idp_metadata_xml]} if idp_metadata_xml else {},
                "xmlsec_binary": xmlsec_binary(),
                "allow_unknown_attributes": True,
                "accepted_time_diff": self._leeway,
            }
        )
        return config

    def metadata_xml(self) -> str:
        from saml2.metadata import entity_descriptor  # noqa: PLC0415

        return str(entity_descriptor(self._config(None)))

    def client(self, saml: SamlSettings) -> Saml2Client:
        from saml2.client import Saml2Client  # noqa: PLC0415

        key = saml.idp_metadata_xml
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                try:
                    found = Saml2Client(self._config(saml.idp_metadata_xml))
                except Exception as error:
                    raise AuthError(
                        "Your identity provider's SAML metadata cannot be read; ask your "
                        "administrator to upload it again.",
                        status_code=503,
                        log_event="saml.idp_metadata_invalid",
                        error=type(error).__name__,
                    ) from error
                self._clients = {key: found}
            return found

    def authentication_request(self, saml: SamlSettings, relay_state: str) -> tuple[str, str]:
        """(request id, redirect URL) of a new AuthnRequest."""
        from saml2 import BINDING_HTTP_REDIRECT  # noqa: PLC0415
        from saml2.s_utils import UnknownPrincipal, UnsupportedBinding  # noqa: PLC0415

        client = self.client(saml)
        try:
            request_id, info = client.prepare_for_authenticate(
                relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
            )
        except (UnknownPrincipal, UnsupportedBinding) as error:
            raise AuthError(
                "Your identity provider's SAML metadata has no usable sign-in endpoint.",
                status_code=503,
                log_event="saml.idp_metadata_unusable",
                error=type(error).__name__,
            ) from error
        return str(request_id), dict(info["headers"])["Location"]

    def parse_response(
        self, saml: SamlSettings, saml_response: str, request_id: str
    ) -> SamlIdentity:
        from saml2 import BINDING_HTTP_POST  # noqa: PLC0415

        client = self.client(saml)
        try:
            response = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
            )
        except Exception as error:
            # pysaml2 raises many types (SignatureError, UnsolicitedResponse, StatusError,
            # ResponseLifetimeExceed, plain ValueError...): the type is what the admin needs.
            raise AuthError(
                "Your identity provider's SAML response was refused; sign in again, or ask "
                "your administrator to check the SAML setup.",
                log_event="saml.response_refused",
                error=type(error).__name__,
                reason=str(error)[:300],
            ) from error
        if response is None:
            raise AuthError(
                "Your identity provider's SAML response was refused; sign in again.",
                log_event="saml.response_refused",
                error="NoResponse",
            )
        if response.assertion is None or not _assertion_signed(response):
            raise AuthError(
                "Your identity provider sent an unsigned SAML assertion; ask your "
                "administrator to have assertions signed.",
                log_event="saml.assertion_unsigned",
            )
        attributes: dict[str, list[str]] = {
            str(name): [str(value) for value in values]
            for name, values in (response.get_identity() or {}).items()
        }
        names = saml.attributes
        subject = response.get_subject()
        name_id = str(subject.text).strip() if subject is not None and subject.text else ""
        email = (attributes.get(names.email) or [name_id])[0]
        name = next(iter(attributes.get(names.name) or []), None)
        return SamlIdentity(
            name_id=name_id,
            email=email,
            name=name,
            groups=list(attributes.get(names.groups) or []),
            attributes=attributes,
        )


def _assertion_signed(response: Any) -> bool:
    # pysaml2 already refuses unsigned assertions when want_assertions_signed is set; this
    # second look keeps the rule even if that setting were ever lost.
    assertion = response.assertion
    return bool(getattr(assertion, "signature", None)) or bool(
        getattr(response.response, "signature", None)
    )


def begin_saml_login(
    state: State, db_session: Session, config: LoginConfig, *, sso_test_id: str | None = None
) -> Redirect:
    if config.saml is None:
        raise AuthError(
            "Single sign-on is not fully configured; ask your administrator.",
            status_code=503,
            log_event="sso.saml_section_missing",
        )
    relay_state = generate_token(32)
    request_id, url = state.saml_sp.authentication_request(config.saml, relay_state)
    db_session.add(
        LoginAttempt(
            state=relay_state,
            protocol="saml",
            saml_request_id=request_id,
            sso_test_id=sso_test_id,
            config_version=config.version,
            expires_at=utcnow() + LOGIN_ATTEMPT_LIFETIME,
        )
    )
    db_session.flush()
    logger.info("login.started", protocol="saml", sso_test=sso_test_id is not None)
    return Redirect(url)
