"""Benchmarks (not tests): run each as ``.venv/bin/python -m bench.<name>``; figures go to the docs."""
