"""Command-line options, ini keys and environment variables, resolved in one place with their source.

Precedence: command line > environment > ini.  Every error names the value and where it came from.
This module imports neither torch nor torchdevice_core: pytest runs that never ask for a target pay nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import pytest

from torchdevice_core.grammar import FLOAT64_POLICIES, SIMULATE_CHOICES, SOURCE_CHOICES, TARGET_ENV
from torchdevice_core.profiles import PROFILES, profile_choices
from torchdevice_core.registry import normalise_target, target_choices


def make_target_type(plugin_targets: Callable[[], Collection[str]]) -> Callable[[str], str]:
    """argparse ``type=``: a malformed target is a usage error at parse time (exit code 4).

    ``plugin_targets`` gives the names installed plugins add (``pytest_torchdevice_register_targets``).
    """

    def target_type(value: str) -> str:
        extra = plugin_targets()
        text = normalise_target(value, extra)
        if text is None:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a valid target device; valid choices: {target_choices(extra)}"
            )
        return text

    return target_type


def profile_type(value: str) -> str:
    text = value.strip().lower()
    if text not in PROFILES:
        raise argparse.ArgumentTypeError(f"{value!r} is not a device profile; valid choices: {profile_choices()}")
    return text


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return number


def seed_type(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer seed") from None


def add_options(parser: pytest.Parser, plugin_targets: Callable[[], Collection[str]] = tuple) -> None:
    group = parser.getgroup("torchdevice", "pytest-torchdevice: run CUDA-written tests on another device")
    group.addoption(
        "--target-device", dest="target_device", type=make_target_type(plugin_targets), default=None,
        metavar="DEVICE",
        help=f"redirect CUDA code to DEVICE ({target_choices()}, or a target a plugin registered); default: "
        f"off. Also ${TARGET_ENV} and the 'target_device' ini key.",
    )
    group.addoption(
        "--torchdevice-seed", dest="torchdevice_seed", type=seed_type, default=None, metavar="N",
        help="seed torch (and the emulated CUDA RNG) with N before every test.",
    )
    group.addoption(
        "--torchdevice-strict", dest="torchdevice_strict", action="store_true", default=None,
        help="fail (instead of skip) tests that call a CUDA API that cannot be emulated on the target.",
    )
    group.addoption(
        "--torchdevice-report", dest="torchdevice_report", default=None, metavar="PATH",
        help="write a JSON report: per test, the CUDA APIs redirected/emulated/refused (the migration list).",
    )
    group.addoption(
        "--torchdevice-call-sites", dest="torchdevice_call_sites", action="store_true", default=None,
        help="record the file:line of every redirected call (in the JSON report; slower).",
    )
    group.addoption(
        "--torchdevice-device-count", dest="torchdevice_device_count", type=positive_int, default=None,
        metavar="N", help="emulate N CUDA devices (default 1).",
    )
    group.addoption(
        "--torchdevice-no-device-checks", dest="torchdevice_no_device_checks", action="store_true", default=None,
        help="do not raise when an emulated CUDA tensor meets a real CPU tensor in one op.",
    )
    group.addoption(
        "--torchdevice-track-memory", dest="torchdevice_track_memory", action="store_true", default=None,
        help="count redirected allocations from the start (default: from the first torch.cuda memory query; "
        "costs time on every op).",
    )
    group.addoption(
        "--torchdevice-plain-tensors", dest="torchdevice_plain_tensors", action="store_true", default=None,
        help="redirected tensors report the target device instead of cuda (faster; tests asserting "
        "x.is_cuda fail).",
    )
    group.addoption(
        "--source-device", dest="source_device", choices=SOURCE_CHOICES, default=None,
        help="the device the suite was written for: auto (default: cuda and mps requests are both redirected), "
        "cuda or mps (only that one).",
    )
    group.addoption(
        "--simulate-limits", dest="simulate_limits", choices=SIMULATE_CHOICES, default=None,
        help="enforce Apple MPS limits (float64, operators without MPS kernels) on the target: predicts, on "
        "Linux CI, which tests would fail on a Mac.",
    )
    group.addoption(
        "--torchdevice-profile", dest="torchdevice_profile", type=profile_type, default=None, metavar="NAME",
        help=f"emulate this GPU: name, capability, memory, SM count, bf16/TF32 and arch list of {profile_choices()} "
        "(default: capability 8.0, the target's memory).",
    )
    group.addoption(
        "--mps-float64", dest="mps_float64", choices=FLOAT64_POLICIES, default=None,
        help="float64 where MPS limits apply: error (as on a Mac; default), downcast (to float32) or cpu "
        "(float64 tensors stay on the CPU).",
    )
    parser.addini("source_device", "the device the suite was written for (auto, cuda or mps)", default=None)
    parser.addini("simulate_limits", "enforce these device limits on the target (mps)", default=None)
    parser.addini("mps_float64", "float64 policy under MPS limits: error, downcast or cpu", default=None)
    parser.addini("torchdevice_profile", f"emulate this GPU ({profile_choices()})", default=None)
    parser.addini("target_device", f"redirect CUDA code to this device ({target_choices()})", default=None)
    parser.addini("torchdevice_seed", "seed torch before every test", default=None)
    # booleans are read as strings and parsed here, so a bad value is an error naming the key and the choices
    parser.addini("torchdevice_strict", "fail tests that call unemulatable CUDA APIs (bool)", default=None)
    parser.addini("torchdevice_device_count", "number of emulated CUDA devices", default=None)
    parser.addini("torchdevice_device_checks", "raise on emulated/real device mixing (bool)", default=None)
    parser.addini("torchdevice_track_memory", "count redirected allocations from the start (bool)", default=None)
    parser.addini("torchdevice_plain_tensors", "redirected tensors report the target device (bool)", default=None)


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # where it came from: "--target-device", "$PYTEST_TARGET_DEVICE", "ini target_device"

    def __str__(self) -> str:
        return f"{self.value} (from {self.origin})"


def option(config: pytest.Config, name: str) -> Any:
    """An option's value, also during ``pytest_load_initial_conftests`` (before ``config.option`` is filled)."""
    namespace = getattr(config, "known_args_namespace", None)
    value = getattr(namespace, name, None) if namespace is not None else None
    if value is None:
        value = config.getoption(name, default=None)
    return value


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except (ValueError, KeyError):
        return None


def resolve_target(config: pytest.Config, environ: dict[str, str], extra: Collection[str] = ()) -> Setting | None:
    """The requested target and where it came from, or None when the plugin is to stay off."""
    cli = option(config, "target_device")
    if cli:
        return Setting(cli, "--target-device")
    env = environ.get(TARGET_ENV, "").strip()
    if env:
        text = normalise_target(env, extra)
        if text is None:
            raise pytest.UsageError(
                f"${TARGET_ENV}={env!r} is not a valid target device; valid choices: {target_choices(extra)}"
            )
        return Setting(text, f"${TARGET_ENV}")
    ini = _ini(config, "target_device")
    if ini:
        text = normalise_target(str(ini), extra)
        if text is None:
            raise pytest.UsageError(
                f"ini target_device={ini!r} is not a valid target device; valid choices: {target_choices(extra)}"
            )
        return Setting(text, "ini target_device")
    return None


TRUE_WORDS = ("true", "yes", "on", "1", "y", "t")
FALSE_WORDS = ("false", "no", "off", "0", "n", "f")


def bool_ini(config: pytest.Config, name: str) -> bool | None:
    """A boolean ini key (None when unset); anything else is a usage error naming the key and the choices."""
    raw = _ini(config, name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):  # a TOML boolean
        return raw
    text = str(raw).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise pytest.UsageError(
        f"ini {name}={raw!r} is not a boolean; valid choices: true, false (also yes/no, on/off, 1/0)"
    )


def _int_ini(config: pytest.Config, name: str) -> int | None:
    raw = _ini(config, name)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise pytest.UsageError(f"ini {name}={raw!r} is not an integer") from None


def _choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str | None:
    """A choice option (argparse already checked the command line) or its ini key, checked here."""
    value = option(config, name)
    if value:
        return str(value)
    raw = _ini(config, name)
    if raw in (None, ""):
        return None
    text = str(raw).strip().lower()
    if text not in choices:
        raise pytest.UsageError(f"ini {name}={raw!r} is not valid; valid choices: {', '.join(choices)}")
    return text


@dataclass(frozen=True)
class PluginSettings:
    """Everything the plugin reads from the command line and ini, resolved once."""

    target: Setting | None
    seed: int | None
    strict: bool
    report_path: str | None
    call_sites: bool
    device_count: int
    device_checks: bool
    plain_tensors: bool
    track_memory: bool = False
    source: str = "auto"
    simulate_limits: str | None = None
    mps_float64: str = "error"
    profile: str | None = None

    def core_options(self) -> dict[str, Any]:
        return {
            "device_count": self.device_count,
            "device_checks": self.device_checks,
            "emulate_identity": not self.plain_tensors,
            "call_sites": self.call_sites,
            "track_memory": self.track_memory,
            "simulate_limits": self.simulate_limits,
            "mps_float64": self.mps_float64,
            "profile": self.profile,
        }


def read_settings(config: pytest.Config, environ: dict[str, str], extra: Collection[str] = ()) -> PluginSettings:
    def flag(name_: str, ini: str, default: bool) -> bool:
        value = option(config, name_)
        if value is not None:
            return bool(value)
        parsed = bool_ini(config, ini)
        return default if parsed is None else parsed

    seed = option(config, "torchdevice_seed")
    if seed is None:
        seed = _int_ini(config, "torchdevice_seed")
    count = option(config, "torchdevice_device_count") or _int_ini(config, "torchdevice_device_count")
    if count is not None and count < 1:
        raise pytest.UsageError(f"ini torchdevice_device_count={count!r} is not a positive integer")
    if option(config, "torchdevice_no_device_checks"):
        device_checks = False
    else:
        parsed = bool_ini(config, "torchdevice_device_checks")
        device_checks = True if parsed is None else parsed
    return PluginSettings(
        source=_choice(config, "source_device", SOURCE_CHOICES) or "auto",
        simulate_limits=_choice(config, "simulate_limits", SIMULATE_CHOICES),
        mps_float64=_choice(config, "mps_float64", FLOAT64_POLICIES) or "error",
        profile=_choice(config, "torchdevice_profile", tuple(PROFILES)),
        target=resolve_target(config, environ, extra),
        seed=seed,
        strict=flag("torchdevice_strict", "torchdevice_strict", False),
        report_path=option(config, "torchdevice_report"),
        call_sites=bool(option(config, "torchdevice_call_sites")),
        device_count=count or 1,
        device_checks=device_checks,
        plain_tensors=flag("torchdevice_plain_tensors", "torchdevice_plain_tensors", False),
        track_memory=flag("torchdevice_track_memory", "torchdevice_track_memory", False),
    )
