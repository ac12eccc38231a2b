"""Checking what a tenant admin says about their identity provider, before anything is saved.

OIDC: the issuer's discovery document is fetched and must name the same issuer and the
endpoints a login needs. SAML: the IdP metadata (given or fetched) is parsed with pysaml2 and
must describe an IdP with a single sign-on service and a signing certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from saml2 import attribute_converter  # type: ignore[import-untyped]
from saml2.mdstore import InMemoryMetaData  # type: ignore[import-untyped]

from control_plane.core.errors import ValidationFailed

DISCOVERY_PATH = "/.well-known/openid-configuration"
# Metadata bigger than this is not an IdP's metadata but a federation's aggregate.
MAX_METADATA_BYTES = 1_000_000
_SAML_SSO_BINDINGS = (
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
    "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
)


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None

    def endpoints(self) -> dict[str, Any]:
        return {
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "end_session_endpoint": self.end_session_endpoint,
        }


def check_url(field: str, url: str, *, require_https: bool) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationFailed({field: f"{url or 'An empty value'} is not an http(s) URL."})
    if require_https and parts.scheme != "https":
        raise ValidationFailed({field: f"Use an https URL; {url} is not encrypted."})
    if parts.query or parts.fragment:
        raise ValidationFailed({field: "The URL must not carry a query or a fragment."})
    return url


def _fetch(field: str, url: str, timeout: float) -> httpx.Response:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        raise ValidationFailed(
            {field: f"{url} did not answer within {timeout:g} s; check the URL."}
        ) from None
    except httpx.TransportError as exc:
        raise ValidationFailed(
            {field: f"Could not reach {url} ({type(exc).__name__}); check the URL."}
        ) from None
    if response.status_code != 200:
        raise ValidationFailed(
            {field: f"{url} answered HTTP {response.status_code}, not 200; check the URL."}
        )
    return response


def discover(issuer: str, *, timeout: float, require_https: bool) -> Discovery:
    """Fetch and check the issuer's discovery document."""
    issuer = check_url("issuer", issuer, require_https=require_https)
    url = issuer.rstrip("/") + DISCOVERY_PATH
    response = _fetch("issuer", url, timeout)
    try:
        document = response.json()
    except ValueError:
        raise ValidationFailed({"issuer": f"{url} is not a JSON discovery document."}) from None
    if not isinstance(document, dict):
        raise ValidationFailed({"issuer": f"{url} is not a JSON discovery document."})
    announced = document.get("issuer")
    if announced != issuer:
        raise ValidationFailed(
            {
                "issuer": f"The provider at {url} names its issuer {announced!r}, not "
                f"{issuer!r}; enter exactly {announced!r}."
            }
        )
    missing = [
        name
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(document.get(name), str) or not document[name]
    ]
    if missing:
        raise ValidationFailed(
            {"issuer": f"The discovery document at {url} lacks {', '.join(missing)}."}
        )
    response_types = document.get("response_types_supported") or ["code"]
    if "code" not in response_types:
        raise ValidationFailed(
            {"issuer": "The provider does not offer the authorization code flow."}
        )
    end_session = document.get("end_session_endpoint")
    return Discovery(
        issuer=issuer,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        end_session_endpoint=end_session if isinstance(end_session, str) else None,
    )


def fetch_metadata(url: str, *, timeout: float, require_https: bool) -> str:
    url = check_url("metadata_url", url, require_https=require_https)
    response = _fetch("metadata_url", url, timeout)
    if len(response.content) > MAX_METADATA_BYTES:
        raise ValidationFailed({"metadata_url": "The metadata is larger than 1 MB."})
    return response.text


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str


def parse_metadata(xml: str, entity_id: str | None = None) -> IdpMetadata:
    """The IdP that ``xml`` describes (``entity_id`` picks one when there are several)."""
    if not xml.strip():
        raise ValidationFailed({"metadata": "Give the IdP metadata: a URL or the XML file."})
    if len(xml.encode()) > MAX_METADATA_BYTES:
        raise ValidationFailed({"metadata": "The metadata is larger than 1 MB."})
    store = InMemoryMetaData(attribute_converter.ac_factory(), None)
    try:
        store.parse(xml)
    except Exception:  # pysaml2 raises SAMLError, XML parser errors or TooOld
        raise ValidationFailed(
            {"metadata": "The IdP metadata is not valid SAML 2.0 metadata XML."}
        ) from None
    idps = [eid for eid in store.keys() if store[eid].get("idpsso_descriptor")]  # noqa: SIM118 - not iterable
    if not idps:
        raise ValidationFailed({"metadata": "The metadata describes no identity provider."})
    if entity_id:
        if entity_id not in idps:
            raise ValidationFailed(
                {"entity_id": f"The metadata has no IdP {entity_id!r}; it has {', '.join(idps)}."}
            )
        chosen = entity_id
    elif len(idps) == 1:
        chosen = idps[0]
    else:
        raise ValidationFailed(
            {"entity_id": f"The metadata has several IdPs; name one of {', '.join(idps)}."}
        )
    sso_url = next(
        (
            service["location"]
            for binding in _SAML_SSO_BINDINGS
            for service in store.service(
                chosen, "idpsso_descriptor", "single_sign_on_service", binding
            )
            or []
        ),
        None,
    )
    if sso_url is None:
        raise ValidationFailed(
            {"metadata": "The IdP offers no single sign-on service over HTTP-Redirect or POST."}
        )
    if not store.certs(chosen, "idpsso", "signing"):
        raise ValidationFailed(
            {
                "metadata": "The IdP metadata has no signing certificate, so no assertion could "
                "be verified."
            }
        )
    return IdpMetadata(entity_id=chosen, sso_url=sso_url)
