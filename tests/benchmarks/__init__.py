"""Benchmarks (``make bench``, docs/performance.md).

``test_bench_smoke.py`` runs every one of them at tiny sizes in ``make test``.
"""
