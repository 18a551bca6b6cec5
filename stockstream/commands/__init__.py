"""CLI subcommands: every module here defines ``register(app)`` and is picked up by ``stockstream.cli``."""
