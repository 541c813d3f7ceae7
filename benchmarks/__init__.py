"""Benchmarks of the suite: detection power (detection.py) and the cost of a verdict (bench_run.py)."""
