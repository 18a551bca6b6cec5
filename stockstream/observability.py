"""Logging and metrics set-up shared by every long-running service.

Entry points call :func:`setup_logging` once and :func:`start_metrics_server` once.
Secrets are registered with :func:`register_secret` as soon as settings are read; a
logging filter then masks them in every record, whoever logs it (our code,
quixstreams, httpx, librdkafka callbacks).
"""

from __future__ import annotations

import logging
import sys
import threading

from prometheus_client import REGISTRY, Info, start_http_server

import stockstream

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 4 chars are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message, masks secrets in it and in any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def setup_logging(level: str = "INFO", service: str = "stockstream") -> None:
    """One line per record on stderr, secrets masked; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_stockstream", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler._stockstream = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)


_build_info: Info | None = None


def start_metrics_server(host: str, port: int, service: str) -> None:
    """Expose ``/metrics`` (prometheus-client default registry, with process metrics) on ``host:port``.

    Port 0 means no endpoint (library use and tests that only read counters).
    """
    global _build_info
    if _build_info is None:
        _build_info = Info("stockstream_build", "Build information of this stockstream process", registry=REGISTRY)
        _build_info.info({"version": stockstream.__version__, "service": service,
                          "python": sys.version.split()[0]})
    if port:
        start_http_server(port, addr=host)
