"""Conformance of emulated CUDA tensors, measured on torch's own test databases.

``python -m benchmarks.conformance`` runs ``op_db`` (OpInfo samples), ``module_db`` (ModuleInfos) and
``optim_db`` (OptimizerInfos) natively on the CPU and on emulated CUDA tensors, and prints how many samples
behave identically and why the others do not (``compare.CAUSES``).  ``tests/conformance`` runs a fixed slice
of it in CI.
"""
