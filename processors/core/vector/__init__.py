"""Vectorized kernel: the core's indicator and rule semantics over whole arrays (backfill, backtests, sweeps).

Never imported by the live processor (it needs numpy, and numba where installed).
"""
