"""Benchmarks that print figures (not pass/fail tests). Run from the repo root, e.g. `python bench/embed.py`."""
