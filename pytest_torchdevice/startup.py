"""What the plugin decides before any conftest loads: plugin targets, the device this process activates, and
the MPS CPU fallback torch reads when it is imported."""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from torchdevice_core.grammar import MPS_FALLBACK_ENV

from .runtime import PluginState
from .xdist import assign_device, worker_index

PluginTargets = dict[str, tuple[Callable[[int | None], Any], Callable[[], bool]]]


def plugin_targets(pluginmanager: pytest.PytestPluginManager) -> PluginTargets:
    """Targets plugins add (``pytest_torchdevice_register_targets``), asked once per plugin manager.

    They enter the core's registry only for the session that activates (and leave it at its end).
    """
    found: PluginTargets | None = getattr(pluginmanager, "_torchdevice_targets", None)
    if found is None:
        found = {}

        def register(name: str, make_backend: Any, is_available: Any = lambda: True) -> None:
            found[str(name).lower()] = (make_backend, is_available)

        pluginmanager.hook.pytest_torchdevice_register_targets(register=register)
        pluginmanager._torchdevice_targets = found  # type: ignore[attr-defined]
    return found


def register_plugin_targets(config: pytest.Config, targets: PluginTargets) -> None:
    """Enter ``targets`` into the core's registry until the end of this config."""
    if not targets:
        return
    from torchdevice_core.registry import register_target, unregister_target

    for name, (make_backend, is_available) in targets.items():
        register_target(name, make_backend, is_available)
        config.add_cleanup(lambda name=name: unregister_target(name))  # type: ignore[misc]


def cuda_count() -> int:
    """The real CUDA devices (never the emulated ones)."""
    import torchdevice_core.spec as spec

    return spec.RealProbe().cuda_device_count()


def decide_device(config: pytest.Config, state: PluginState, worker_id: str | None) -> str | None:
    """The device spec this process (or xdist worker ``worker_id``) activates; None when off."""
    if state.settings.target is None:
        return None
    requested = state.settings.target.value
    chosen = config.hook.pytest_torchdevice_select_device(config=config, worker_id=worker_id, requested=requested)
    if chosen:
        return str(chosen)
    if requested == "auto":
        import torchdevice_core as core

        device = core.resolve_target("auto").device
        requested = device.type
    if requested != "cuda":
        return str(requested)
    return assign_device(requested, worker_index(worker_id or ""), cuda_count())


def enable_mps_fallback(config: pytest.Config, state: PluginState) -> None:
    """MPS raises for operators it lacks unless PYTORCH_ENABLE_MPS_FALLBACK=1 was set before torch loaded."""
    settings = state.settings
    requested = settings.target.value if settings.target else ""
    on_a_mac = sys.platform == "darwin" and platform.machine() == "arm64"
    if not (requested == "mps" or (requested == "auto" and on_a_mac) or settings.simulate_limits == "mps"):
        return
    if MPS_FALLBACK_ENV in os.environ:
        return  # the user decided
    if "torch" in sys.modules and requested != "cpu" and settings.simulate_limits is None:
        warnings.warn(pytest.PytestConfigWarning(
            f"torch was imported before pytest-torchdevice could set {MPS_FALLBACK_ENV}=1: operators without an "
            f"MPS kernel will raise; set {MPS_FALLBACK_ENV}=1 in the environment to let them fall back to the CPU"
        ), stacklevel=1)
    os.environ[MPS_FALLBACK_ENV] = "1"
    config.add_cleanup(lambda: _unset(MPS_FALLBACK_ENV))


def _unset(name: str) -> None:
    os.environ.pop(name, None)
