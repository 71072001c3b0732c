"""Target device types added by other packages, beside the built-in cpu, mps and cuda.

A package registers a name (``register_target("xpu", make_backend, is_available)``); the name then works
wherever a target is accepted (``activate("xpu")``, ``--target-device=xpu:1``).  ``make_backend(index)``
returns a ``torchdevice_core.backends.Backend`` whose ``device`` is where redirected tensors live.  This
module imports nothing heavy: the pytest plugin consults it while parsing the command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from . import grammar


class RegisteredTarget:
    __slots__ = ("is_available", "make_backend", "name")

    def __init__(self, name: str, make_backend: Callable[[int | None], Any], is_available: Callable[[], bool]):
        self.name = name
        self.make_backend = make_backend
        self.is_available = is_available


_TARGETS: dict[str, RegisteredTarget] = {}


def register_target(name: str, make_backend: Callable[[int | None], Any],
                    is_available: Callable[[], bool] = lambda: True) -> None:
    """Add (or replace) target ``name``; ``make_backend(index)`` gets the ``:N`` index or None."""
    if not isinstance(name, str) or not re.match(grammar.TARGET_NAME, name) or name in grammar.BUILTIN_TARGETS:
        raise ValueError(f"{name!r} cannot be registered as a target: use a new lowercase identifier, not one of "
                         f"{', '.join(grammar.BUILTIN_TARGETS)}")
    _TARGETS[name] = RegisteredTarget(name, make_backend, is_available)


def unregister_target(name: str) -> None:
    _TARGETS.pop(name, None)


def registered_target(name: str) -> RegisteredTarget | None:
    return _TARGETS.get(name)


def target_names() -> tuple[str, ...]:
    return tuple(sorted(_TARGETS))


def target_choices(extra: Collection[str] = ()) -> str:
    """The valid choices, for error messages: the built-in forms, then registered (and ``extra``) names."""
    return grammar.target_choices({*_TARGETS, *extra})


def normalise_target(value: object, extra: Collection[str] = ()) -> str | None:
    """``grammar.normalise_target`` knowing the registered targets (and ``extra`` names); None when malformed."""
    return grammar.normalise_target(value, {*_TARGETS, *extra})
