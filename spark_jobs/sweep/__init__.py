"""Parameter sweeps and walk-forward over history on Spark (``stockstream sweep``)."""
