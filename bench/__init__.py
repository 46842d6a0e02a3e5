"""Benchmarks: real servers as separate processes, figures beside same-run baselines."""
