"""Benchmarks: bounded, in process or against 127.0.0.1 only; not part of the test suite."""
