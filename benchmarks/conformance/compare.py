"""Comparing a native CPU run with the same run on emulated CUDA tensors.

The emulated run executes the very same CPU kernels on the very same data, so values are compared exactly
(bit for bit, NaN equal to NaN): any difference means the emulation took another code path, and that is a
finding, not noise.  A value that differs but is within ``torch.testing.assert_close``'s default tolerance is
still a mismatch, reported as ``value (within tolerance)`` so the two kinds can be told apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import _pytree as pytree

import torchdevice_core as td

CUDA0 = torch.device("cuda", 0)

# The causes a sample can fail with, in the order they are checked (a sample gets the first that applies).
CAUSES = (
    "exception only under emulation",
    "exception only natively",
    "different exception",
    "output structure",
    "device report",
    "dtype",
    "shape",
    "value",
    "value (within tolerance)",
    "requires_grad",
    "grad exception",
    "grad device report",
    "grad value",
    "not reproducible natively",
    "state_dict",
    "module move",
)


class Mismatch(Exception):
    """The first difference found in a sample: ``cause`` is one of ``CAUSES``."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(f"{cause}: {detail}")
        self.cause = cause
        self.detail = detail


@dataclass
class Outcome:
    """One sample of one database entry: ``cause`` None means identical with correct device reports."""

    db: str
    name: str
    dtype: str
    index: int
    cause: str | None = None
    detail: str = ""
    no_cuda_kernel: bool = False  # the OpInfo says CUDA has no kernel at this dtype: CUDA would raise

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, "", False)}


@dataclass
class Summary:
    """Counts per database: what ``--json`` writes and the table prints."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    not_run: dict[str, int] = field(default_factory=dict)  # "db: reason" -> entries whose samples could not be made

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


class Emulator:
    """Turns native sample data into what user code would hand a CUDA op: ``t.cuda()`` for every tensor
    (the same object twice gives the same emulated tensor, so aliasing arguments stay aliased), ``"cpu"``
    device arguments become ``"cuda"``.  Tensors that required grad become leaves that require grad."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.leaves: list[tuple[torch.Tensor, torch.Tensor]] = []  # (native, emulated) that require grad
        self.touched = False  # did the sample name the device at all? (``torch.arange(3)`` alone stays on the CPU)

    def __call__(self, obj: Any) -> Any:
        return pytree.tree_map(self._one, obj)

    def _one(self, x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            got = self.memo.get(id(x))
            self.touched = True
            if got is None:
                got = copy_layout(x, True)
                if x.requires_grad:
                    got.requires_grad_()
                    self.leaves.append((x, got))
                self.memo[id(x)] = got
            return got
        if isinstance(x, torch.device) and x.type == "cpu":
            self.touched = True
            return CUDA0
        if isinstance(x, str) and x == "cpu":
            self.touched = True
            return "cuda"
        return x


def copy_layout(x: torch.Tensor, to_device: bool) -> torch.Tensor:
    """A detached copy of ``x`` (on the emulated device: ``.cuda()``) that keeps the storage around a view:
    a sample that is a view into a larger buffer (an offset, gaps, overlaps) keeps that layout, as when
    torch's tests make it on the device (``x.cuda()`` alone would compact it, and ``as_strided`` samples
    would then point outside it)."""
    with torch.no_grad():
        if x.layout == torch.strided and not (x.is_quantized or x.is_conj() or x.is_neg()) and x.numel():
            storage = x.untyped_storage()
            size = x.element_size()
            dense = x.storage_offset() == 0 and x.is_contiguous() and storage.nbytes() == x.numel() * size
            if not dense and storage.nbytes() % size == 0:
                raw = x.detach().as_strided((storage.nbytes() // size,), (1,), 0)  # the whole storage
                raw = raw.cuda() if to_device else raw.clone()
                return raw.as_strided(x.size(), x.stride(), x.storage_offset())
        return x.detach().cuda() if to_device else x.detach().clone()


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def reports_cuda(t: torch.Tensor) -> bool:
    return t.device == CUDA0 and t.is_cuda is True and td.is_emulated(t)


def plain(t: torch.Tensor) -> torch.Tensor:
    """The data of an emulated tensor as a plain CPU tensor (no autograd), to compare values."""
    with torch.no_grad():
        return t.cpu() if td.is_emulated(t) else t.detach()


def compare_tensor(native: torch.Tensor, emulated: Any, where: str, *, expect_cuda: bool = True,
                   device_cause: str = "device report", value_cause: str = "value", values: bool = True) -> None:
    """Raise ``Mismatch`` unless ``emulated`` is ``native`` on the emulated device: class, device, dtype,
    shape, values (exact, NaN-aware)."""
    if not isinstance(emulated, torch.Tensor):
        raise Mismatch("output structure", f"{where}: a tensor natively, {type(emulated).__name__} emulated")
    if expect_cuda and native.device.type == "cpu" and not reports_cuda(emulated):
        raise Mismatch(device_cause, f"{where}: {type(emulated).__name__} reports {emulated.device} "
                                     f"(is_cuda={emulated.is_cuda})")
    if not expect_cuda and td.is_emulated(emulated):
        raise Mismatch(device_cause, f"{where}: expected a plain {native.device} tensor, got {emulated.device}")
    if native.dtype != emulated.dtype:
        raise Mismatch("dtype", f"{where}: {native.dtype} natively, {emulated.dtype} emulated")
    if native.shape != emulated.shape:
        raise Mismatch("shape", f"{where}: {tuple(native.shape)} natively, {tuple(emulated.shape)} emulated")
    if native.layout != emulated.layout:
        raise Mismatch("output structure", f"{where}: layout {native.layout} natively, {emulated.layout} emulated")
    if not values:
        return
    a, b = plain(native), plain(emulated)
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    if a.is_quantized or b.is_quantized:
        a, b = a.dequantize(), b.dequantize()
    if not _equal(a, b):
        try:
            torch.testing.assert_close(b, a, equal_nan=True, check_device=False)
        except AssertionError:
            raise Mismatch(value_cause, f"{where}: values differ") from None
        raise Mismatch(f"{value_cause} (within tolerance)" if value_cause == "value" else value_cause,
                       f"{where}: values differ in the last bits")


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype.is_floating_point or a.dtype.is_complex:
        if a.dtype.is_complex:
            a, b = torch.view_as_real(a.resolve_conj()), torch.view_as_real(b.resolve_conj())
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
        return bool(same.all())
    return bool(torch.equal(a, b))


def compare_outputs(native: Any, emulated: Any, where: str = "output", *, expect_cuda: bool = True) -> None:
    """Compare two op results leaf by leaf (tensors, numbers, sizes, nested tuples/lists/dicts)."""
    n_leaves, n_spec = pytree.tree_flatten(native)
    e_leaves, e_spec = pytree.tree_flatten(emulated)
    if n_spec != e_spec:
        raise Mismatch("output structure", f"{where}: {n_spec} natively, {e_spec} emulated")
    for i, (n, e) in enumerate(zip(n_leaves, e_leaves, strict=True)):
        here = f"{where}[{i}]" if len(n_leaves) > 1 else where
        if isinstance(n, torch.Tensor):
            compare_tensor(n, e, here, expect_cuda=expect_cuda)
            if n.requires_grad != e.requires_grad:
                raise Mismatch("requires_grad", f"{here}: {n.requires_grad} natively, {e.requires_grad} emulated")
        elif isinstance(n, float) and isinstance(e, float):
            if not _same_float(n, e):
                raise Mismatch("value", f"{here}: {n!r} natively, {e!r} emulated")
        elif isinstance(n, complex) and isinstance(e, complex):
            if not (_same_float(n.real, e.real) and _same_float(n.imag, e.imag)):
                raise Mismatch("value", f"{here}: {n!r} natively, {e!r} emulated")
        elif isinstance(n, torch.device):
            wanted = CUDA0 if n.type == "cpu" and expect_cuda else n
            if e != wanted:
                raise Mismatch("device report", f"{here}: {e} emulated, expected {wanted}")
        elif type(n) is not type(e) or n != e:
            raise Mismatch("value", f"{here}: {n!r} natively, {e!r} emulated")


def run_both(native: Callable[[], Any], emulated: Callable[[], Any]) -> tuple[Any, Any]:
    """Call both sides; an exception on one side only is a mismatch (on both: the same type is agreement,
    returned as the pair of exceptions)."""
    n_exc = e_exc = None
    n_out = e_out = None
    try:
        n_out = native()
    except Exception as exc:
        n_exc = exc
    try:
        e_out = emulated()
    except Exception as exc:
        e_exc = exc
    if n_exc is None and e_exc is not None:
        raise Mismatch("exception only under emulation", short(e_exc))
    if n_exc is not None and e_exc is None:
        raise Mismatch("exception only natively", short(n_exc))
    if n_exc is not None and e_exc is not None:
        if type(n_exc) is not type(e_exc):
            raise Mismatch("different exception", f"{short(n_exc)} natively, {short(e_exc)} emulated")
        return n_exc, e_exc
    return n_out, e_out


def short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}"


def differentiable(out: Any) -> list[torch.Tensor]:
    """The tensors of a result that autograd can go back from."""
    return [t for t in pytree.tree_leaves(out)
            if isinstance(t, torch.Tensor) and t.requires_grad and (t.dtype.is_floating_point or t.dtype.is_complex)]
