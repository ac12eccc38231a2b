"""A real SAML identity provider for the tests: pysaml2's IdP side over HTTP on loopback.

It has its own generated key and certificate, publishes its metadata, and answers
AuthnRequests (HTTP-Redirect binding) with a Response for the user the test signed in
(`login_as`), sent back through the HTTP-POST binding as the auto-submitting form a
browser would post to the service provider.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


class SamlIdpUnavailable(RuntimeError):
    """The IdP cannot run; the message says what to install."""


@dataclass(frozen=True)
class SamlUser:
    email: str
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostedResponse:
    """What the IdP's auto-submitting form would post to the service provider."""

    action: str
    saml_response: str
    relay_state: str


def self_signed(directory: Path, common_name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{common_name}.key", directory / f"{common_name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass
class SamlIdp:
    url: str
    directory: Path
    key_file: Path
    cert_file: Path
    user: SamlUser | None = None
    sign_assertion: bool = True
    sp_metadata: list[str] = field(default_factory=list)
    _server: Server | None = None

    @property
    def entity_id(self) -> str:
        return f"{self.url}/idp/metadata"

    def _config(self) -> IdPConfig:
        xmlsec = shutil.which("xmlsec1")
        if xmlsec is None:
            raise SamlIdpUnavailable("xmlsec1 is missing: run `make test-deps`")
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{self.url}/sso/redirect", BINDING_HTTP_REDIRECT)
                            ]
                        },
                        "policy": {"default": {"lifetime": {"minutes": 5}}},
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    }
                },
                "key_file": str(self.key_file),
                "cert_file": str(self.cert_file),
                "xmlsec_binary": xmlsec,
                "metadata": {"inline": list(self.sp_metadata)} if self.sp_metadata else {},
                "allow_unknown_attributes": True,
            }
        )
        return config

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self._config()))

    def trust(self, sp_metadata_xml: str) -> None:
        """Know a service provider (its ACS) from its published metadata."""
        self.sp_metadata.append(sp_metadata_xml)
        self._server = Server(config=self._config())

    def login_as(self, user: SamlUser) -> None:
        self.user = user

    def answer(self, saml_request: str, relay_state: str) -> PostedResponse:
        """The signed Response to an AuthnRequest, as the browser would post it."""
        if self._server is None or self.user is None:
            raise AssertionError("call trust() and login_as() before a login reaches the IdP")
        request = self._server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message
        response = self._server.create_authn_response(
            {
                "email": [self.user.email],
                "name": [self.user.name],
                "groups": list(self.user.groups),
            },
            in_response_to=request.id,
            destination=request.assertion_consumer_service_url,
            sp_entity_id=request.issuer.text,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=self.user.email),
            authn={"class_ref": PASSWORD_CONTEXT},
            sign_assertion=self.sign_assertion,
            sign_response=False,
        )
        form = self._server.apply_binding(
            BINDING_HTTP_POST,
            str(response),
            request.assertion_consumer_service_url,
            relay_state,
            response=True,
        )["data"]
        return _parse_form(form)

    def answer_redirect(self, location: str) -> PostedResponse:
        query = parse_qs(urlsplit(location).query)
        return self.answer(query["SAMLRequest"][0], query.get("RelayState", [""])[0])


def _parse_form(html: str) -> PostedResponse:
    def value(name: str) -> str:
        match = re.search(rf'name="{name}" value="([^"]*)"', html)
        if match is None:
            raise AssertionError(f"the IdP's form has no {name}")
        return match.group(1)

    action = re.search(r'action="([^"]+)"', html)
    if action is None:
        raise AssertionError("the IdP's form has no action")
    return PostedResponse(action.group(1), value("SAMLResponse"), value("RelayState"))


class _Handler(BaseHTTPRequestHandler):
    idp: SamlIdp

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/idp/metadata":
            self._send(200, "application/samlmetadata+xml", self.idp.metadata_xml())
            return
        if parts.path == "/sso/redirect":
            query = parse_qs(parts.query)
            posted = self.idp.answer(query["SAMLRequest"][0], query.get("RelayState", [""])[0])
            page = (
                f'<html><body onload="document.forms[0].submit()">'
                f'<form method="post" action="{posted.action}">'
                f'<input type="hidden" name="SAMLResponse" value="{posted.saml_response}"/>'
                f'<input type="hidden" name="RelayState" value="{posted.relay_state}"/>'
                f"</form></body></html>"
            )
            self._send(200, "text/html", page)
            return
        self._send(404, "text/plain", "not found")

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def run_saml_idp(directory: Path) -> Iterator[SamlIdp]:
    """An IdP with a fresh key pair, serving on a free loopback port until exit."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = self_signed(directory, "idp")
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    idp = SamlIdp(
        url=f"http://127.0.0.1:{server.server_address[1]}",
        directory=directory,
        key_file=key_file,
        cert_file=cert_file,
    )
    handler.idp = idp
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        server.shutdown()
        server.server_close()
