"""The target grammar and the names the plugin, the core and the subprocess hook share, each defined once.

Torch-free (it imports nothing but ``re``): the pytest plugin parses its command line with it before
anything needs torch, and ``torchdevice_subprocess`` reads its environment variable name from it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

BUILTIN_TARGETS = ("cpu", "mps", "cuda", "auto")
INDEXED_TARGETS = ("cuda",)  # built-ins that take ``:N``: mps has one device, cpu indices mean nothing to torch
SOURCE_TYPES = ("cuda", "mps")  # device types code can be written for
SOURCE_CHOICES = ("auto", *SOURCE_TYPES)  # auto: whichever of them the code asks for
FLOAT64_POLICIES = ("error", "downcast", "cpu")  # float64/complex128 where MPS limits apply
SIMULATE_CHOICES = ("mps",)  # device limits --simulate-limits can enforce
MPS_UNSUPPORTED_DTYPES = {"float64": "float32", "complex128": "complex64"}  # torch.<name> -> its downcast

TARGET_ENV = "PYTEST_TARGET_DEVICE"  # the plugin's target when --target-device is not given
SUBPROCESS_ENV = "TORCHDEVICE_SUBPROCESS"  # the redirection subprocesses activate (JSON), set by the plugin
MPS_FALLBACK_ENV = "PYTORCH_ENABLE_MPS_FALLBACK"  # torch's own: "1" runs ops without an MPS kernel on the CPU

TARGET_NAME = r"^[a-z][a-z0-9_]*$"  # what a registered target may be called (a pattern)
_SPEC = re.compile(r"^([a-z][a-z0-9_]*)(?::(\d+))?$")


def normalise_target(value: object, registered: Collection[str] = ()) -> str | None:
    """``" CUDA:1"`` -> ``"cuda:1"``; None when malformed.  ``registered`` names (targets added by other
    packages) are accepted too, with or without an index."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    match = _SPEC.match(text)
    if match is None:
        return None
    name, index = match.groups()
    if name in registered:
        return text
    if name not in BUILTIN_TARGETS or (index is not None and name not in INDEXED_TARGETS):
        return None
    return text


def matches(spec: str, current: str | None) -> bool:
    """Does ``spec`` (``cuda``, or ``cuda:1`` for that device only) name the ``current`` device?"""
    if current is None:
        return False
    if ":" in spec:
        return spec == current
    return current.split(":")[0] == spec


def target_choices(registered: Iterable[str] = ()) -> str:
    """The valid choices, for help texts and error messages: the built-in forms, then ``registered`` names."""
    forms = [form for name in BUILTIN_TARGETS for form in _forms(name, name in INDEXED_TARGETS)]
    for name in sorted(set(registered) - set(BUILTIN_TARGETS)):
        forms += _forms(name, True)
    return ", ".join(forms)


def _forms(name: str, indexed: bool) -> list[str]:
    return [name, f"{name}:N"] if indexed else [name]


TARGET_CHOICES = target_choices()  # the built-in forms: "cpu, mps, cuda, cuda:N, auto"
DEVICE_CHOICES = ", ".join(form for form in TARGET_CHOICES.split(", ") if form != "auto")  # a marker's devices
