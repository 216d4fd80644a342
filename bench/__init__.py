"""Benchmarks for DESIGN.md §8 targets: each module has main() -> dict of figures."""
