"""Benchmarks: run the scripts in this folder directly (see docs/benchmarks.md)."""
