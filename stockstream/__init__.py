"""stockstream: real-time trading signals, event-sourced on Kafka."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution on first use (not at every import: ~50 ms)."""
    if name == "__version__":
        from processors.runtime import package_version

        value = package_version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
