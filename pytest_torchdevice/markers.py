"""Markers: ``requires_cuda``, ``skip_device``, ``xfail_device``, ``devices``.

Marker arguments go through plain function signatures, so a typo (``skip_device("mpss")``,
``reason=`` misspelt) is a clear collection error instead of a marker that silently never applies.
"""

from __future__ import annotations

from typing import Any

import pytest

from .options import normalise_target, target_choices

MARKERS = (
    "requires_cuda: needs real CUDA hardware; skipped (with the reason) when the target device is not CUDA",
    "skip_device(*devices, reason=''): skip when the target device is one of devices (cpu, mps, cuda, cuda:N)",
    "xfail_device(*devices, reason='', strict=False, raises=None): expected to fail on these target devices",
    "devices(*devices): run the test once per device, ids like test_x[cpu]; a device the machine lacks is skipped",
)


def _validated(devices: tuple[Any, ...], marker: str) -> tuple[str, ...]:
    if not devices:
        raise pytest.UsageError(f"@pytest.mark.{marker}() needs at least one device ({target_choices()})")
    out = []
    for device in devices:
        text = normalise_target(device) if isinstance(device, str) else None
        if text is None or text == "auto":
            raise pytest.UsageError(
                f"@pytest.mark.{marker}({device!r}): not a device; valid choices: cpu, mps, cuda, cuda:N"
            )
        out.append(text)
    return tuple(out)


def skip_device_args(*devices: str, reason: str = "") -> tuple[tuple[str, ...], str]:
    return _validated(devices, "skip_device"), reason


def xfail_device_args(*devices: str, reason: str = "", strict: bool = False,
                      raises: Any = None) -> tuple[tuple[str, ...], dict[str, Any]]:
    return _validated(devices, "xfail_device"), {"reason": reason, "strict": strict, "raises": raises}


def devices_args(*devices: str) -> tuple[str, ...]:
    return _validated(devices, "devices")


def _call(fn: Any, mark: pytest.Mark) -> Any:
    try:
        return fn(*mark.args, **mark.kwargs)
    except TypeError as exc:
        raise pytest.UsageError(f"@pytest.mark.{mark.name}: {exc}") from None


def matches(device: str, current: str | None) -> bool:
    """Does a marker's ``device`` (``cuda`` or ``cuda:1``) name the ``current`` target device?"""
    if current is None:
        return False
    if ":" in device:
        return device == current
    return current.split(":")[0] == device


def apply(item: pytest.Item, current: str | None, has_cuda: Any) -> None:
    """Turn this item's device markers into pytest's own skip/xfail marks for target ``current``."""
    if item.get_closest_marker("requires_cuda") is not None:
        real_cuda = (current is not None and current.startswith("cuda")) or (current is None and has_cuda())
        if not real_cuda:
            where = f"the target device is {current}" if current else "this machine has no CUDA"
            item.add_marker(pytest.mark.skip(reason=f"requires real CUDA hardware ({where})"))
    for mark in item.iter_markers("skip_device"):
        devices, reason = _call(skip_device_args, mark)
        if any(matches(d, current) for d in devices):
            item.add_marker(pytest.mark.skip(reason=reason or f"skipped on {current}"))
    for mark in item.iter_markers("xfail_device"):
        devices, kwargs = _call(xfail_device_args, mark)
        if any(matches(d, current) for d in devices):
            kwargs["reason"] = kwargs["reason"] or f"expected to fail on {current}"
            if kwargs["raises"] is None:
                del kwargs["raises"]
            item.add_marker(pytest.mark.xfail(**kwargs))


def devices_of(definition: Any) -> tuple[str, ...] | None:
    mark = definition.get_closest_marker("devices")
    return None if mark is None else _call(devices_args, mark)
