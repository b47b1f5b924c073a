"""Benchmarks run by hand or by ``make bench``; not collected by pytest (no ``test_`` files)."""
