"""stockstream: real-time trading signals, event-sourced on Kafka."""

from processors.runtime import package_version

__version__ = package_version()
