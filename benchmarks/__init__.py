"""Benchmarks of the toolkit against plain TensorFlow baselines (see benchmarks/run.py)."""
