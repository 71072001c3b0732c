"""Why a test did not pass on the target: one cause per test, from its exception and its redirect record.

The causes are the rows of ``CAUSES``, tried in order; the first whose ``matches`` holds wins, and a test
that matches none is ``other``.  To add a cause, add one ``Cause`` row (its name then appears in the JSON
report, the manifest and the merged table without further changes).

The cause is decided where the exception is (the process that ran the test, an xdist worker included) and
travels in the test's record (``"exception"``, ``"cause"``); ``classify_report`` redoes it from a report's
reason string for reports written before these fields existed.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

OTHER = "other"
_ERROR_KEY = pytest.StashKey["Failure"]()


@dataclass(frozen=True)
class Failure:
    """What is known about one failing (or skipped-by-us) test."""

    exception: str | None  # the exception's type name (``RuntimeError``, ``torch.OutOfMemoryError``), or None
    messages: tuple[str, ...] = ()  # ``str()`` of the exception and of every exception in its chain
    chain: tuple[str, ...] = ()  # the type names of the exception and its chain (``__cause__``/``__context__``)
    record: Mapping[str, Any] = field(default_factory=dict)  # the test's redirect record (summary.test_record)

    def says(self, pattern: re.Pattern[str]) -> bool:
        return any(pattern.search(message) for message in self.messages)


@dataclass(frozen=True)
class Cause:
    name: str
    description: str
    matches: Callable[[Failure], bool]


_FLOAT64 = re.compile(
    r"MPS framework doesn't support float64|(?:float64|complex128) is not supported on MPS"
    r"|convert \S+ to the MPS backend but it does not have support for that dtype"
)
_MPS_KERNEL = re.compile(r"is not currently implemented for the MPS device")
_TARGET_GAP = re.compile(r"not implemented for '(?:Half|BFloat16|ComplexHalf|Float8\w*|Bool|Byte|Char|Short|Int|Long|"
                         r"Float|Double|ComplexFloat|ComplexDouble)'")
_TARGET_GAP_SKIP = re.compile(r"^torchdevice: target gap:")
_MISMATCH = re.compile(
    r"Expected all tensors to be on the same device|Expected .{0,80} to be on the same device"
    r"|should be the same or input should be a MKLDNN tensor"
    r"|Input type \(.*\) and weight type \(.*\) should be the same"
    r"|indices should be either on cpu or on the same device"
)
_UNEMULATABLE = re.compile(r"cannot be emulated on (?:target )?'?\w")


def _unemulatable(failure: Failure) -> bool:
    return (any(name.endswith("UnemulatableError") for name in failure.chain) or failure.says(_UNEMULATABLE)
            or (failure.exception is None and bool(failure.record.get("refused"))))


def _target_gap(failure: Failure) -> bool:
    # a kernel the target lacks for a dtype, hit by redirected code: recorded by the core ("target_gap"), or read
    # from the message (the same error on tensors the test itself put on the CPU is the test's own failure)
    if failure.record.get("target_gap") or failure.says(_TARGET_GAP_SKIP):
        return True
    return failure.says(_TARGET_GAP) and bool(failure.record.get("cuda_path"))


CAUSES: tuple[Cause, ...] = (
    Cause("unemulatable", "called a CUDA API that cannot be emulated on the target", _unemulatable),
    Cause("float64", "float64/complex128 on MPS (see --mps-float64)", lambda f: f.says(_FLOAT64)),
    Cause("missing_mps_kernel", "an operator without an MPS kernel (fallback off)", lambda f: f.says(_MPS_KERNEL)),
    Cause("target_gap", "the target has no kernel for this op at this dtype", _target_gap),
    Cause("device_mismatch", "tensors of different devices met in one op", lambda f: f.says(_MISMATCH)),
)
"""Tried in order, first match wins; anything else is ``OTHER``."""

CAUSE_NAMES: tuple[str, ...] = (*(c.name for c in CAUSES), OTHER)


def classify(failure: Failure) -> str:
    for cause in CAUSES:
        if cause.matches(failure):
            return cause.name
    return OTHER


def type_name(cls: type) -> str:
    """``RuntimeError`` for builtins, ``module.Qualname`` otherwise: what ``resolve_type`` turns back into a class."""
    module = getattr(cls, "__module__", "builtins")
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def resolve_type(name: str) -> type[BaseException] | None:
    """The exception class ``type_name`` named, or None when it cannot be found (module gone, renamed)."""
    candidates = [("builtins", name)] if "." not in name else []
    # a nested qualname (``Outer.Error``) has dots too: try every split, longest module first
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        candidates.append((".".join(parts[:cut]), ".".join(parts[cut:])))
    for module_name, qualname in candidates:
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = importlib.import_module(module_name)
            except Exception:
                continue
        obj: Any = module
        for attr in qualname.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
    return None


def from_exception(exc: BaseException, record: Mapping[str, Any] | None = None) -> Failure:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain) and len(chain) < 16:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return Failure(type_name(type(exc)), tuple(str(e) for e in chain), tuple(type_name(type(e)) for e in chain),
                   record or {})


# ---------------------------------------------------------------------------------------------- plugin side
_SKIPS = (pytest.skip.Exception, pytest.xfail.Exception)


def remember(item: pytest.Item, call: pytest.CallInfo[Any]) -> None:
    """Keep the first real exception of this test (setup, call or teardown) for its record."""
    excinfo = call.excinfo
    if excinfo is None or _ERROR_KEY in item.stash or excinfo.errisinstance(_SKIPS):
        return
    item.stash[_ERROR_KEY] = from_exception(excinfo.value)


def annotate(record: dict[str, Any], item: pytest.Item) -> dict[str, Any]:
    """Add ``exception`` and ``cause`` to a test's record (both None when the test raised nothing of ours)."""
    failure = item.stash.get(_ERROR_KEY, None)
    if failure is not None:
        failure = Failure(failure.exception, failure.messages, failure.chain, record)
        record["exception"] = failure.exception
        record["cause"] = classify(failure)
    elif record.get("refused") or record.get("target_gap"):  # skipped by the plugin: the cause is the record's
        record["exception"] = None
        record["cause"] = classify(Failure(None, record=record))
    return record


def classify_report(test: Mapping[str, Any]) -> str | None:
    """A cause for a per-test report entry: its own ``cause``, else one read from its reason; None for passes."""
    if test.get("cause"):
        return str(test["cause"])
    outcome = test.get("outcome")
    if outcome in (None, "passed", "xpassed"):
        return None
    if outcome == "skipped" and not (test.get("refused") or test.get("target_gap")):
        return None  # an ordinary skip has no cause to fix
    reason = str(test.get("reason") or "")
    return classify(Failure(test.get("exception"), (reason,) if reason else (), (), test))
