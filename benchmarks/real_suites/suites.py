"""The corpus: which third-party suites are run, at which pinned versions, on which test paths and why.

Data only. Each subset (a path left out, a ``-k``) says why in ``subset_note``; the budget is the one in the
README: the three ways of every suite must fit about 20 minutes on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TORCH_PIN = "torch==2.13.0"
TOOL_PINS = ("pytest==9.2.0", "pytest-xdist==3.8.0")


@dataclass(frozen=True)
class GitTests:
    """Where to take the tests from when the sdist does not ship them: a path list of the release tag.

    ``url`` is cloned (bare, depth 1) unless ``--git-mirror NAME=GIT_DIR`` names a local clone that has the
    tag; the package itself is still installed from its sdist, so code and tests are the same release.
    """

    url: str
    tag: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Suite:
    """One third-party library and how to run its tests."""

    name: str
    dist: str  # PyPI distribution name
    version: str
    test_args: tuple[str, ...]  # paths (relative to the unpacked sdist) and selection flags, all ways
    subset_note: str = ""  # why test_args is not simply the whole test dir, shown in the table
    requirements: tuple[str, ...] = ()  # pinned extra packages the tests need
    common_args: tuple[str, ...] = ()  # extra pytest args for all ways
    native_args: tuple[str, ...] = ()  # extra pytest args for (a) only
    plugin_args: tuple[str, ...] = ()  # extra pytest args for (b) and (c)
    env: tuple[tuple[str, str], ...] = ()  # extra environment variables for all ways
    tests_from_git: GitTests | None = None  # the sdist has no tests: take them from the release tag
    timeout_s: int = 900  # per pytest run
    # nodeid -> why the test fails on real CUDA hardware too (a bug in the test or the library that only its
    # CUDA branch reaches). Still counted as regressions, but shown apart, so the unexplained ones stand out.
    fails_on_cuda_too: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"


# Timings below are this 2-core box, natively, sequential: gpytorch's whole test/ takes ~490 s,
# pytorch_optimizer's tests/ ~200 s, linear_operator's test/ ~70 s.
_GPYTORCH_SLOW = (
    # test/examples files that take > 3 s natively (together ~190 s); the cheap example files with
    # CUDA branches stay in.
    "test/examples/test_batch_decoupled_ppgpr_regression.py",
    "test/examples/test_batch_gp_regression.py",
    "test/examples/test_batch_multitask_gp_regression.py",
    "test/examples/test_batch_svgp_gp_regression.py",
    "test/examples/test_decoupled_svgp_regression.py",
    "test/examples/test_dspp_regression.py",
    "test/examples/test_kissgp_additive_classification.py",
    "test/examples/test_kissgp_gp_classification.py",
    "test/examples/test_kissgp_gp_regression.py",
    "test/examples/test_kissgp_kronecker_product_classification.py",
    "test/examples/test_kronecker_multitask_ski_gp_regression.py",
    "test/examples/test_lmc_svgp_regression.py",
    "test/examples/test_missing_data.py",
    "test/examples/test_svgp_gp_regression.py",
    "test/utils/test_nearest_neighbors.py",
)

_LKJ_ETA = "LKJ priors keep eta as a plain attribute, not a buffer: Module.cuda() leaves it on the CPU"

_GPYTORCH_FAILS_ON_CUDA_TOO = {
    f"test/priors/{nodeid}": why
    for nodeid, why in (
        (
            "test_half_cauchy_prior.py::TestHalfCauchyPrior::test_half_cauchy_prior_to_gpu",
            "calls .cuda() on torch.distributions.HalfCauchy, which has no such method",
        ),
        (
            "test_half_normal_prior.py::TestHalfNormalPrior::test_half_normal_prior_to_gpu",
            "asserts on HalfNormalPrior.concentration, an attribute it does not have",
        ),
        ("test_lkj_prior.py::TestLKJPrior::test_lkj_prior_to_gpu", _LKJ_ETA),
        ("test_lkj_prior.py::TestLKJCholeskyFactorPrior::test_lkj_cholesky_factor_prior_to_gpu", _LKJ_ETA),
        ("test_lkj_prior.py::TestLKJCovariancePrior::test_lkj_covariance_prior_to_gpu", _LKJ_ETA),
        (
            "test_multivariate_normal_prior.py::TestMultivariateNormalPrior::test_multivariate_normal_prior_to_gpu",
            "Prior.__setattr__ and the lazy covariance_matrix recurse after .cuda()/.cpu() "
            "(the same RecursionError natively after .cpu())",
        ),
    )
}

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite(
            name="linear_operator",
            dist="linear_operator",
            version="0.6.1",
            test_args=("test",),
        ),
        Suite(
            name="gpytorch",
            dist="gpytorch",
            version="1.15.2",
            test_args=("test", "--ignore=test/variational", *(f"--ignore={p}" for p in _GPYTORCH_SLOW)),
            subset_note=(
                "test/ minus test/variational (~220 s) and the 15 slowest example/util files (~190 s): "
                "the whole dir takes ~8 min natively"
            ),
            requirements=("linear_operator==0.6.1",),
            fails_on_cuda_too=_GPYTORCH_FAILS_ON_CUDA_TOO,
        ),
        Suite(
            name="pytorch_optimizer",
            dist="pytorch_optimizer",
            version="4.1.0",
            test_args=(
                "tests",
                "-k",
                "not (test_create_compiled_optimizer and not adamw) and not test_sharded_updates",
            ),
            subset_note=(
                "tests/ minus test_muon's test_sharded_updates and the torch.compile cases of "
                "test_create_compiled_optimizer except those whose id mentions adamw (13 of 104 kept); "
                "the two take ~45% of the native time"
            ),
            # its addopts asks for pytest-cov; coverage is not what we measure
            common_args=("-o", "addopts=-p no:pastebin -p no:doctest"),
            plugin_args=("--device=cuda",),  # its conftest's option; default (cpu) natively
        ),
        Suite(
            # A graph library whose tests are CPU-only almost everywhere: the regression check. Its layers
            # take in_channels=-1 (lazy UninitializedParameter initialisation), FULL_TEST=1 turns on the
            # torch.jit.script checks inside the layer tests, and its aggregations wrap nn.LSTM / nn.GRU.
            name="torch_geometric",
            dist="torch_geometric",
            version="2.8.0.post1",
            test_args=(
                "test/nn",
                "test/utils",
                "test/explain",
                "test/data",
                "test/loader",
                "test/test_edge_index.py",
                "test/test_index.py",
            ),
            subset_note=(
                "test/nn (the layers: lazy in_channels=-1, torch.jit.script under FULL_TEST=1, LSTM/GRU "
                "aggregations, to_hetero/fx, torch.compile), utils, explain, data, loader and the index types; "
                "not transforms, datasets, io, graphgym, llm, distributed, contrib (no regression in transforms "
                "when measured; the others need downloads or extras): ~11 min per way on this machine"
            ),
            timeout_s=1800,
            # its addopts adds -vv --capture=no; the marker filter is the one it uses itself
            common_args=("-o", "addopts=", "-m", "not rag and not dataset"),
            env=(("FULL_TEST", "1"),),
            tests_from_git=GitTests(
                url="https://github.com/pyg-team/pytorch_geometric", tag="2.8.0.post1", paths=("test",)
            ),
        ),
    )
}
