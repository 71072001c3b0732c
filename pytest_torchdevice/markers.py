"""Markers: ``requires_cuda``, ``skip_device``, ``xfail_device``, ``devices`` (and ``torchdevice_*`` aliases).

Marker arguments go through plain function signatures, so a typo (``skip_device("mpss")``,
``reason=`` misspelt) is a usage error naming the test and its file, instead of a marker that silently
never applies.

Suites have markers of their own, sometimes with these very names (openai-whisper registers its own
``requires_cuda``).  Every marker of the plugin therefore also exists under a name that cannot collide,
``torchdevice_<name>``; a short name that the suite registers itself (in its ini file or a conftest) keeps
the suite's meaning: the plugin leaves it alone and says so in the header.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from torchdevice_core.grammar import DEVICE_CHOICES, matches
from torchdevice_core.registry import normalise_target, target_choices

PREFIX = "torchdevice_"
DESCRIPTIONS = {
    "requires_cuda": ": needs real CUDA hardware; skipped (with the reason) when the target device is not CUDA",
    "skip_device": f"(*devices, reason=''): skip when the target device is one of devices ({DEVICE_CHOICES})",
    "xfail_device": "(*devices, reason='', strict=False, raises=None): expected to fail on these target devices",
    "devices": "(*devices): run the test once per device, ids like test_x[cpu]; a device the machine lacks is "
               "skipped",
}
MARKERS = tuple(f"{name}{text}" for name, text in DESCRIPTIONS.items())
OWN_LINES = frozenset(MARKERS) | frozenset(f"{PREFIX}{line}" for line in MARKERS)
_NAME = re.compile(r"^\s*([A-Za-z_][\w]*)")
YIELDED_KEY = pytest.StashKey[tuple[str, ...]]()
ERRORS_KEY = pytest.StashKey[list[str]]()


class MarkerError(Exception):
    """A marker used with arguments it does not take."""


def register(config: pytest.Config) -> None:
    """Our ``torchdevice_*`` names always; a short name only where the suite has not registered it itself."""
    taken = suite_markers(config)
    for name, text in DESCRIPTIONS.items():
        config.addinivalue_line("markers", f"{PREFIX}{name}{text}")
        if name not in taken:
            config.addinivalue_line("markers", f"{name}{text}")


def suite_markers(config: pytest.Config) -> set[str]:
    """Marker names registered by anyone but this plugin (ini ``markers`` and ``addinivalue_line`` calls)."""
    names = set()
    for line in config.getini("markers"):
        match = _NAME.match(line)
        if match and line not in OWN_LINES:
            names.add(match.group(1))
    return names


def yielded(config: pytest.Config) -> tuple[str, ...]:
    """The short names the suite registers itself: they keep the suite's meaning (asked once per session)."""
    found = config.stash.get(YIELDED_KEY, None)
    if found is None:
        found = tuple(name for name in DESCRIPTIONS if name in suite_markers(config))
        config.stash[YIELDED_KEY] = found
    return found


def header_line(config: pytest.Config) -> str | None:
    names = yielded(config)
    if not names:
        return None
    ours = ", ".join(f"@pytest.mark.{PREFIX}{name}" for name in names)
    return (f"torchdevice: the suite registers its own marker(s) {', '.join(names)}: left to the suite; "
            f"the plugin's are {ours}")


def _names(config: pytest.Config, name: str) -> tuple[str, ...]:
    return (PREFIX + name,) if name in yielded(config) else (PREFIX + name, name)


def _validated(devices: tuple[Any, ...], marker: str) -> tuple[str, ...]:
    if not devices:
        raise MarkerError(f"@pytest.mark.{marker}() needs at least one device ({target_choices()})")
    out = []
    for device in devices:
        text = normalise_target(device)
        if text is None or text == "auto":
            raise MarkerError(
                f"@pytest.mark.{marker}({device!r}): not a device; valid choices: {DEVICE_CHOICES}"
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
        raise MarkerError(f"@pytest.mark.{mark.name}: {exc}") from None


def where(node: Any) -> str:
    """``path/test_x.py:12 (test_x.py::test_y)``: the test a marker error is about, and its file and line."""
    location = getattr(node, "location", None)
    if location is not None:
        return f"{location[0]}:{(location[1] or 0) + 1} ({node.nodeid})"
    return node.nodeid


def report_error(config: pytest.Config, node: Any, error: MarkerError) -> None:
    """Remember a marker error; ``raise_errors`` ends the run with all of them as a usage error."""
    config.stash.setdefault(ERRORS_KEY, []).append(f"{where(node)}: {error}")


def raise_errors(config: pytest.Config) -> None:
    errors = config.stash.get(ERRORS_KEY, [])
    if not errors:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # before pytest's "no tests ran" line, where the eye is
        for line in errors:
            reporter.write_line(f"ERROR: {line}", red=True, bold=True)
    noun = "error" if len(errors) == 1 else "errors"
    pytest.exit(f"pytest-torchdevice: {len(errors)} marker usage {noun}: {'; '.join(errors)}",
                returncode=pytest.ExitCode.USAGE_ERROR)


def apply(item: pytest.Item, current: str | None, has_cuda: Any) -> None:
    """Turn this item's device markers into pytest's own skip/xfail marks for target ``current``."""
    config = item.config
    try:
        _apply(item, config, current, has_cuda)
    except MarkerError as exc:
        report_error(config, item, exc)


def _apply(item: pytest.Item, config: pytest.Config, current: str | None, has_cuda: Any) -> None:
    if any(item.get_closest_marker(name) is not None for name in _names(config, "requires_cuda")):
        real_cuda = (current is not None and current.startswith("cuda")) or (current is None and has_cuda())
        if not real_cuda:
            reason = f"the target device is {current}" if current else "this machine has no CUDA"
            item.add_marker(pytest.mark.skip(reason=f"requires real CUDA hardware ({reason})"))
    for name in _names(config, "skip_device"):
        for mark in item.iter_markers(name):
            devices, reason = _call(skip_device_args, mark)
            if any(matches(d, current) for d in devices):
                item.add_marker(pytest.mark.skip(reason=reason or f"skipped on {current}"))
    for name in _names(config, "xfail_device"):
        for mark in item.iter_markers(name):
            devices, kwargs = _call(xfail_device_args, mark)
            if any(matches(d, current) for d in devices):
                kwargs["reason"] = kwargs["reason"] or f"expected to fail on {current}"
                if kwargs["raises"] is None:
                    del kwargs["raises"]
                item.add_marker(pytest.mark.xfail(**kwargs))


def devices_of(definition: Any) -> tuple[str, ...] | None:
    """The devices a ``devices`` marker asks for; None without one (or when its arguments are wrong: the
    error is reported, with the others, after collection)."""
    config = definition.config
    for name in _names(config, "devices"):
        mark = definition.get_closest_marker(name)
        if mark is not None:
            try:
                return tuple(_call(devices_args, mark))
            except MarkerError as exc:
                report_error(config, definition, exc)
                return None
    return None
