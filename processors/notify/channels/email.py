"""Mail over SMTP with :mod:`smtplib`: STARTTLS and authentication optional.

Each mail has a stable ``Message-ID`` (``<signal_id>.<channel>@stockstream.notify``) so
a re-sent duplicate is recognisable. All recipients refused (e.g. ``550`` unknown
user) is ``bad_address``, failed login ``smtp_auth``, other 5xx ``smtp_<code>``:
permanent. 4xx answers, timeouts and dropped connections are retried.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from processors.notify.notification import Notification
from processors.notify.retry import PermanentDeliveryError, TransientDeliveryError
from processors.runtime.observability import redact

log = logging.getLogger(__name__)


def build_message(notification: Notification, *, channel: str, sender: str, to: Sequence[str],
                  now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = notification.title
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{notification.signal_id}.{channel}@stockstream.notify>"
    message["X-Stockstream-Signal-Id"] = notification.signal_id
    message.set_content(notification.text + "\n")
    return message


class EmailSender:
    """Sends each notification as one mail to the channel's recipients (one SMTP session per mail)."""

    def __init__(self, name: str, *, host: str, port: int, sender: str, to: Sequence[str], starttls: bool,
                 username: str | None, password: str | None, ca_file: Path | None, timeout_s: float,
                 now: Callable[[], datetime]) -> None:
        self.name = name
        self._host, self._port = host, port
        self._sender, self._to = sender, tuple(to)
        self._starttls = starttls
        self._username, self._password = username, password
        self._ca_file = ca_file
        self._timeout = timeout_s
        self._now = now

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)

    def send(self, notification: Notification) -> None:
        message = build_message(notification, channel=self.name, sender=self._sender, to=self._to, now=self._now())
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted({code for code, _ in error.recipients.values()})
            if codes and all(400 <= code < 500 for code in codes):
                raise TransientDeliveryError(f"smtp_{codes[0]}", "recipients temporarily refused") from None
            raise PermanentDeliveryError("bad_address", f"all recipients refused (SMTP {codes})") from None
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentDeliveryError("smtp_auth", f"login refused (SMTP {error.smtp_code})") from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentDeliveryError("smtp_unsupported", "the server does not offer STARTTLS/AUTH") from None
        except smtplib.SMTPResponseException as error:
            detail = redact(f"SMTP {error.smtp_code} {error.smtp_error!r}"[:200])
            if error.smtp_code >= 500:
                raise PermanentDeliveryError(f"smtp_{error.smtp_code}", detail) from None
            raise TransientDeliveryError(f"smtp_{error.smtp_code}", detail) from None
        except ssl.SSLError as error:
            raise PermanentDeliveryError("tls_error", f"TLS failed: {error.reason or type(error).__name__}") from None
        except (smtplib.SMTPException, OSError) as error:
            reason = "timeout" if isinstance(error, TimeoutError) else "connection_error"
            raise TransientDeliveryError(reason, redact(f"{type(error).__name__}: {error}"[:200])) from None
        if refused:
            log.warning("channel %s: some recipients refused the mail for signal %s: %s",
                        self.name, notification.signal_id, ", ".join(sorted(refused)))

    def close(self) -> None:
        """Nothing to release: every mail uses its own SMTP session."""
