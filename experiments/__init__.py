"""Benchmarks: scripts that print speed and accuracy figures (`python -m experiments.bench_train`, ...)."""
