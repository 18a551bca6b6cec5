"""``stockstream composite``: the composite index ``SYMBOL@index`` (median of fresh venues) as a Quix app.

Parts: :mod:`.settings` (its one settings class), :mod:`.stage` (the per-record logic around the
pure :mod:`processors.core.composite`), :mod:`.service` (the process). docs/composite.md has the
definition and the deployment notes.
"""
