"""Mail to console users (address verification, password reset).

``BACKLOT_SMTP_URL`` picks an SMTP server: ``smtp://user:password@host:587`` (STARTTLS
when the server offers it; ``?starttls=off`` for a local relay) or ``smtps://...:465``.
Without it, the embedded default writes each message as an ``.eml`` file under
``<data dir>/mail``, where a developer (or a test) reads it.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from control_plane.core.errors import ServiceUnavailable
from control_plane.core.settings import Settings

log = structlog.get_logger(__name__)
SMTP_TIMEOUT_SECONDS = 10


def compose(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@backlot>"
    message.set_content(body)
    return message


def send(settings: Settings, to: str, subject: str, body: str) -> None:
    message = compose(settings, to, subject, body)
    url = settings.smtp_url.get_secret_value()
    if url:
        _send_smtp(url, message)
    else:
        _capture(settings, message)
    # The body carries single-use links: it never reaches a log line.
    log.info("mail.sent", subject=subject, backend="smtp" if url else "capture")


def _send_smtp(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ServiceUnavailable("BACKLOT_SMTP_URL must look like smtp://host:587 or smtps://host")
    options = parse_qs(parts.query)
    context = ssl.create_default_context()
    try:
        if parts.scheme == "smtps":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                parts.hostname, parts.port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            server = smtplib.SMTP(parts.hostname, parts.port or 587, timeout=SMTP_TIMEOUT_SECONDS)
        with server:
            server.ehlo()
            wants_tls = options.get("starttls", ["auto"])[0] != "off"
            if parts.scheme == "smtp" and wants_tls and server.has_extn("starttls"):
                server.starttls(context=context)
                server.ehlo()
            if parts.username:
                server.login(unquote(parts.username), unquote(parts.password or ""))
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail.smtp_failed", error=type(exc).__name__)
        raise ServiceUnavailable("Mail could not be sent just now; try again shortly.") from None


def _capture(settings: Settings, message: EmailMessage) -> None:
    directory = settings.mail_dir
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(bytes(message))
    path.chmod(0o600)


def captured(settings: Settings) -> list[EmailMessage]:
    """Messages the embedded default wrote, oldest first."""
    if not settings.mail_dir.exists():
        return []
    parser = BytesParser(policy=policy.default)
    return [
        parser.parsebytes(path.read_bytes()) for path in sorted(settings.mail_dir.glob("*.eml"))
    ]
