"""``op_db``: every OpInfo sample, natively on the CPU and on emulated CUDA tensors.

Per OpInfo and dtype (float32; the first integer dtype and the first reduced-precision float the CPU has
kernels for), the samples are made once on the CPU.  The native side runs them with redirection off; then
redirection is switched on and the same samples, moved with ``.cuda()`` as user code would move them, run
again.  Both sides seed the RNG identically before every call, so random ops (dropout, bernoulli,
``rand_like``...) are compared value for value too: the emulated CUDA generator is the CPU's.  Ops whose
output is uninitialized memory (``has_nondeterministic_output``: ``empty_like``...) compare dtype, shape and
device only.  Where the op supports autograd at that dtype, the gradients of every input that requires grad
(``.grad`` of the emulated leaves, as user code reads them) must match and report CUDA too.  In-place
variants run on samples without grad and must return ``self`` and leave the same values behind.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils import _pytree as pytree

import torchdevice_core as td

from .compare import (
    Emulator,
    Mismatch,
    Outcome,
    Summary,
    compare_outputs,
    compare_tensor,
    differentiable,
    run_both,
    short,
)
from .samples import pristine, resolver, tensors_of

INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
REDUCED_DTYPES = (torch.bfloat16, torch.float16)
VARIANTS = ("op", "inplace")


def op_db() -> list[Any]:
    from torch.testing._internal.common_methods_invocations import op_db as db

    return list(db)


def full_name(op: Any) -> str:
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def select(ops: Iterable[Any], names: Iterable[str] | None) -> list[Any]:
    """OpInfos whose full name (``name`` or ``name.variant``) or plain name is in ``names``."""
    if names is None:
        return list(ops)
    wanted = set(names)
    chosen = [op for op in ops if full_name(op) in wanted or op.name in wanted]
    missing = wanted - {full_name(op) for op in chosen} - {op.name for op in chosen}
    if missing:
        raise SystemExit(f"not in op_db: {', '.join(sorted(missing))}")
    return chosen


def dtypes_for(op: Any) -> list[torch.dtype]:
    supported = op.supported_dtypes("cpu")
    chosen = [torch.float32] if torch.float32 in supported else []
    for family in (INTEGER_DTYPES, REDUCED_DTYPES):
        for dtype in family:
            if dtype in supported:
                chosen.append(dtype)
                break
    return chosen


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass
class _Native:
    """What the native side left for one sample."""

    data: Any  # (input, args, kwargs) as they were before the call
    process: Any  # sample.output_process_fn_grad
    result: Any = None  # the op's return value (or the exception)
    after: Any = None  # (result, mutated input) for in-place variants
    grads: list[torch.Tensor | None] | None = None
    grad_outputs: list[torch.Tensor] | None = None
    grad_error: BaseException | None = None


def _seed(seed: int) -> None:
    torch.manual_seed(seed)


def _call(fn: Any, data: Any) -> Any:
    inp, args, kwargs = data
    return fn(inp, *args, **kwargs)


def _grad_outputs(outs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    _seed(seed + 1_000_003)
    return [torch.randn_like(o) for o in outs]


def _native_side(op: Any, fn: Any, samples: list[Any], grad: bool, inplace: bool, base: int) -> list[_Native]:
    done = []
    for i, sample in enumerate(samples):
        data = (sample.input, sample.args, sample.kwargs)
        rec = _Native(pristine(data), sample.output_process_fn_grad)
        _seed(base + i)
        try:
            rec.result = _call(fn, data)
            if inplace:
                rec.after = (rec.result, sample.input)
        except Exception as exc:
            rec.result = exc
        if grad and not isinstance(rec.result, BaseException):
            try:
                outs = differentiable(sample.output_process_fn_grad(rec.result))
                leaves = [t for t in tensors_of(data) if t.requires_grad]
                if outs and leaves:
                    rec.grad_outputs = _grad_outputs(outs, base + i)
                    rec.grads = list(torch.autograd.grad(outs, leaves, rec.grad_outputs, allow_unused=True))
            except Exception as exc:
                rec.grad_error = exc
        done.append(rec)
    return done


def _emulated_one(op: Any, fn: Any, rec: _Native, grad: bool, inplace: bool, seed: int) -> None:
    """Raise ``Mismatch`` at the first difference; return normally when the sample is identical."""
    conv = Emulator()
    data = conv(rec.data)
    fn = resolver().live(fn)

    def emulated() -> Any:
        _seed(seed)
        return _call(fn, data)

    native_result = rec.result

    def native() -> Any:
        if isinstance(native_result, BaseException):
            raise native_result
        return native_result

    _, out = run_both(native, emulated)
    if isinstance(out, BaseException):
        return  # both raised the same exception type
    if op.has_nondeterministic_output:  # uninitialized memory: only what the values are, not the values
        for i, (n, e) in enumerate(zip(pytree.tree_leaves(native_result), pytree.tree_leaves(out), strict=False)):
            if isinstance(n, torch.Tensor):
                compare_tensor(n, e, f"output[{i}]", values=False)
        return
    if inplace:
        if rec.after[0] is rec.after[1] and out is not data[0]:
            raise Mismatch("output structure", "in-place variant did not return self")
        compare_outputs(rec.after[1], data[0], "self after the in-place op", expect_cuda=conv.touched)
    compare_outputs(native_result, out, expect_cuda=conv.touched)
    if not grad or (rec.grads is None and rec.grad_error is None):
        return
    leaves = [e for _, e in conv.leaves]
    try:
        outs = differentiable(rec.process(out))
        if len(outs) != len(rec.grad_outputs or ()):
            raise Mismatch("requires_grad", f"{len(outs)} differentiable outputs emulated, "
                                            f"{len(rec.grad_outputs or ())} natively")
        if rec.grad_error is None:
            grad_outputs = [g.cuda() for g in rec.grad_outputs or ()]
            torch.autograd.backward(outs, grad_outputs, inputs=leaves)
    except Mismatch:
        raise
    except Exception as exc:
        if rec.grad_error is None:
            raise Mismatch("grad exception", short(exc)) from None
        if type(exc) is not type(rec.grad_error):
            raise Mismatch("grad exception", f"{short(rec.grad_error)} natively, {short(exc)} emulated") from None
        return
    if rec.grad_error is not None:
        raise Mismatch("grad exception", f"only natively: {short(rec.grad_error)}")
    for k, (native_grad, leaf) in enumerate(zip(rec.grads or (), leaves, strict=True)):
        got = leaf.grad
        if native_grad is None or got is None:
            if native_grad is None and got is not None and bool((got != 0).any()):
                raise Mismatch("grad value", f"grad[{k}]: None natively, nonzero emulated")
            if native_grad is not None and got is None and bool((native_grad != 0).any()):
                raise Mismatch("grad value", f"grad[{k}]: nonzero natively, None emulated")
            continue
        compare_tensor(native_grad, got, f"grad[{k}]", device_cause="grad device report", value_cause="grad value")


_VALUE_CAUSES = ("value", "value (within tolerance)", "grad value")


def _reproducible(fn: Any, rec: _Native, seed: int, handle: Any) -> bool:
    """Does the native call give the same result again?  (LAPACK's ``gelsy`` on rank-deficient batches does
    not: such a sample says nothing about the emulation.)  Three more native runs, redirection suspended."""
    with handle.suspended():
        for _ in range(3):
            if not _same_again(fn, rec, seed):
                return False
    return True


def _same_again(fn: Any, rec: _Native, seed: int) -> bool:
    try:
        again = pristine(rec.data)
        _seed(seed)
        result = _call(fn, again)
        compare_outputs(rec.result, result, expect_cuda=False)
        if rec.grads is not None and rec.grad_outputs is not None:
            outs = differentiable(rec.process(result))
            leaves = [t for t in tensors_of(again) if t.requires_grad]
            grads = torch.autograd.grad(outs, leaves, rec.grad_outputs, allow_unused=True)
            compare_outputs([g for g in rec.grads if g is not None], [g for g in grads if g is not None],
                            expect_cuda=False)
    except Exception:
        return False
    return True


def _samples(op: Any, dtype: torch.dtype, grad: bool) -> list[Any]:
    _seed(0)
    return list(op.sample_inputs("cpu", dtype, requires_grad=grad))


def run_op(op: Any, summary: Summary, *, limit: int | None = None, variants: Iterable[str] = VARIANTS,
           target: str = "cpu") -> None:
    """Every sample of one OpInfo at each chosen dtype, for each variant, into ``summary``."""
    for dtype in dtypes_for(op):
        grad = op.supports_autograd and dtype in op.supported_backward_dtypes("cpu")
        no_cuda_kernel = dtype not in op.supported_dtypes("cuda")
        for variant in variants:
            fn = op.op if variant == "op" else op.inplace_variant
            if fn is None:
                continue
            use_grad = grad and variant == "op"
            name = full_name(op) if variant == "op" else f"{full_name(op)} (in-place)"
            try:
                samples = _samples(op, dtype, use_grad)
            except Exception as exc:
                key = f"op_db: sample generation failed ({short(exc, 60)})"
                summary.not_run[key] = summary.not_run.get(key, 0) + 1
                continue
            if limit is not None:
                samples = samples[:limit]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resolver()
                native = _native_side(op, fn, samples, use_grad, variant == "inplace", 0)
                handle = td.activate(target)
                try:
                    for i, rec in enumerate(native):
                        outcome = Outcome("op_db", name, _dtype_name(dtype), i, no_cuda_kernel=no_cuda_kernel)
                        try:
                            _emulated_one(op, fn, rec, use_grad, variant == "inplace", i)
                        except Mismatch as m:
                            outcome.cause, outcome.detail = m.cause, m.detail
                            if m.cause in _VALUE_CAUSES and not _reproducible(fn, rec, i, handle):
                                outcome.cause = "not reproducible natively"
                        except Exception as exc:  # the harness's own comparison failed on this sample
                            outcome.cause, outcome.detail = "exception only under emulation", short(exc)
                        summary.add(outcome)
                finally:
                    handle.deactivate()


def run(names: Iterable[str] | None = None, *, limit: int | None = None, variants: Iterable[str] = VARIANTS,
        summary: Summary | None = None, progress: bool = False) -> Summary:
    summary = summary or Summary()
    start = time.perf_counter()
    for op in _iter(select(op_db(), names), progress):
        run_op(op, summary, limit=limit, variants=tuple(variants))
    summary.seconds["op_db"] = summary.seconds.get("op_db", 0.0) + time.perf_counter() - start
    return summary


def _iter(ops: list[Any], progress: bool) -> Iterator[Any]:
    for k, op in enumerate(ops):
        if progress and k % 50 == 0:
            print(f"  op_db {k}/{len(ops)} {full_name(op)}", flush=True)
        yield op
