"""Acceptance test on real third-party suites: do CUDA-written test suites run unchanged on a CPU box, and
does every test that passes without the plugin still pass with it?

    python -m benchmarks.real_suites [--suite NAME ...] [--ways native,plugin] [--json PATH] [--keep]

The modules, one job each: ``suites`` (the corpus: pinned versions, test paths, subsets and why),
``provision`` (a throwaway venv per suite, sdist download, tests from a release tag where the sdist has
none), ``collector`` (the pytest plugin loaded into every run, writing per-test outcomes as JSON), ``run``
(one pytest invocation per way), ``analysis`` (regressions, CUDA-path pass rates, overhead, as dataclasses),
``tables`` (what is printed) and ``__main__`` (the command line). Nothing third-party is committed: sdists are
downloaded into the work dir (default ``.real_suites/``, gitignored).
"""
