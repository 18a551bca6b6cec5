"""stockstream: real-time trading signals, event-sourced on Kafka."""

__version__ = "0.1.0"
