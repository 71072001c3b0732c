"""A fixed slice of the conformance harness (``python -m benchmarks.conformance``) run in CI.

Every sample of these OpInfos, ModuleInfos and OptimizerInfos is identical today (values, dtype, shape,
``cuda:0``/``is_cuda`` on every result and gradient): a sample that stops being identical fails here with
its cause.  The entries cover the kinds of op the emulation treats differently: factories and ``*_like``
(device arguments), in-place variants (``self`` returned), random ops (compared after re-seeding: the
emulated CUDA generator is the CPU's), uninitialized memory (``empty_like``: no values compared), views and
``as_strided``, indexing with CPU indices, ops returning tuples and integer tensors, reductions, linear
algebra, convolutions and losses.
"""

from __future__ import annotations

import pytest

from benchmarks.conformance import modules, ops, optimizers
from benchmarks.conformance.compare import Summary

OPS = (
    "add", "mul", "sub", "div", "pow", "sin", "exp", "abs", "clamp", "where", "sum", "mean", "max.reduction_with_dim",
    "argmax", "sort", "topk", "cumsum", "nonzero", "unique", "cat", "stack", "view", "reshape", "transpose",
    "as_strided", "expand", "index_select", "gather", "scatter_add", "index_put", "__getitem__", "masked_fill",
    "matmul", "addmm", "bmm", "linalg.solve", "nn.functional.conv2d", "nn.functional.max_pool2d",
    "softmax", "nn.functional.cross_entropy", "nn.functional.embedding", "nn.functional.layer_norm",
    "nn.functional.dropout", "bernoulli", "rand_like", "randn_like", "arange", "full", "zeros_like", "new_zeros",
    "empty_like", "new_empty", "clone", "to", "item", "nn.functional.fractional_max_pool2d",
)
MODULES = (
    "nn.Linear", "nn.Conv2d", "nn.BatchNorm2d", "nn.LSTM", "nn.Embedding", "nn.MultiheadAttention",
    "nn.TransformerEncoderLayer", "nn.CrossEntropyLoss", "nn.LayerNorm", "nn.GRU",
)
OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "LBFGS", "ASGD", "NAdam")


def _explain(summary: Summary) -> str:
    bad = [o for o in summary.outcomes if o.cause]
    return "\n".join(f"{o.name} [{o.dtype}] sample {o.index}: {o.cause}: {o.detail}" for o in bad[:20])


def _assert_identical(summary: Summary) -> None:
    assert summary.outcomes, "no sample ran"
    assert not summary.not_run, summary.not_run
    assert all(o.cause is None for o in summary.outcomes), _explain(summary)


@pytest.mark.parametrize("name", OPS)
def test_op_db_samples_identical(name: str) -> None:
    _assert_identical(ops.run([name], limit=12))


@pytest.mark.parametrize("name", MODULES)
def test_module_db_inputs_identical(name: str) -> None:
    _assert_identical(modules.run([name], limit=4))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optim_db_configs_identical(name: str) -> None:
    _assert_identical(optimizers.run([name], limit=4))
