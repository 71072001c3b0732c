"""Benchmarks of pytest-torchdevice: overhead ratios (``overhead.py``) and real third-party suites
(``real_suites/``). Not part of the wheel; a package so that mypy, ruff and the tests reach it."""
