"""Benchmarks: `python -m bench [--list] [--duration S] [--connections N] [scenario ...]`.

The harness (bench/harness.py) starts an isolated server (pinned to its own core) and
worker; scenarios (bench/scenarios/) drive load from this process and return Result objects
(bench/report.py) that are printed as one table and saved to bench/results/<time>.json.
See docs/BENCHMARKS.md.
"""
