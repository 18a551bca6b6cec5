"""Symbol normalization: one spelling per instrument everywhere in the system.

Sources spell instruments differently (Coinbase ``BTC-USD``, Kraken ``BTC/USD``,
Alpha Vantage ``BTC`` + ``USD``). Every adapter converts to the ``BTC-USD`` style
through :func:`normalize_symbol` before a ``Tick`` is built, so state keys, Kafka
keys and Redis keys agree.
"""

from __future__ import annotations

import re

SYMBOL_MAX_LENGTH = 32
# Letters, digits and the separators - / . _ ; must start with a letter or digit.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9\-/._]{0,31}$")
NORMALIZED_SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9\-._]{0,31}$"


class InvalidSymbolError(ValueError):
    """Raised when a symbol cannot be normalized; the message is safe to show and log."""


def normalize_symbol(raw: object) -> str:
    """Return the canonical ``BASE-QUOTE`` style symbol, or raise :class:`InvalidSymbolError`.

    Upper-cases, trims, and turns the pair separator ``/`` into ``-`` (``btc/usd`` →
    ``BTC-USD``). Stock tickers such as ``BRK.B`` keep their dot.
    """
    if not isinstance(raw, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(raw).__name__}")
    text = raw.strip().upper()
    if not text:
        raise InvalidSymbolError("symbol is empty")
    if len(text) > SYMBOL_MAX_LENGTH:
        raise InvalidSymbolError(f"symbol longer than {SYMBOL_MAX_LENGTH} characters")
    if not SYMBOL_PATTERN.match(text):
        raise InvalidSymbolError("symbol may hold only letters, digits and - / . _")
    return text.replace("/", "-")


def pair_symbol(base: str, quote: str) -> str:
    """Build a symbol from a base and a quote currency (``BTC``, ``USD`` → ``BTC-USD``)."""
    return normalize_symbol(f"{base}-{quote}")
