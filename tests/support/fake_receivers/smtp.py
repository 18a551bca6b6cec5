"""A real local SMTP server (aiosmtpd) that keeps every mail it accepts, for notifier tests.

Options: STARTTLS with a throw-away self-signed certificate (:func:`self_signed_cert`),
AUTH LOGIN/PLAIN with one user, and recipients to refuse with ``550`` (bad address).
"""

from __future__ import annotations

import datetime as dt
import email
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port


def self_signed_cert(folder: Path, hostname: str = "localhost") -> tuple[Path, Path]:
    """Write ``cert.pem`` / ``key.pem`` for ``hostname`` and 127.0.0.1 (the cert is also its own CA)."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    tls: bool
    login: str | None

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content().replace("\r\n", "\n") if part is not None else ""


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address in self.receiver.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                            tls=session.ssl is not None, login=login)
        with self.receiver._lock:
            self.receiver._mails.append(mail)
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """``with SmtpReceiver(...) as smtp:`` listens on 127.0.0.1:``smtp.port``."""

    def __init__(self, *, cert: tuple[Path, Path] | None = None, user: tuple[str, str] | None = None,
                 refused: set[str] | None = None) -> None:
        self.refused = refused or set()
        self._lock = threading.Lock()
        self._mails: list[ReceivedMail] = []
        self.logins_tried: list[str] = []  # every AUTH attempt's user name (with or without TLS)
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            kwargs.update(tls_context=context, require_starttls=True)
        if user is not None:
            expected_login, expected_password = user

            def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
                if isinstance(auth_data, LoginPassword):
                    self.logins_tried.append(auth_data.login.decode())
                good = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == expected_login
                        and auth_data.password.decode() == expected_password)
                return AuthResult(success=good, handled=False, auth_data=auth_data)

            kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=cert is not None)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def wait_for(self, count: int, *, timeout_s: float = 120.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout_s
        while len(self.mails) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mail(s), got {len(self.mails)}")
            time.sleep(0.05)
        return self.mails
