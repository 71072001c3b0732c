"""The plugin's per-process state: the active handle, the chosen device, and switching for ``devices``."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from torchdevice_core.grammar import MPS_FALLBACK_ENV, SUBPROCESS_ENV, matches

from .options import PluginSettings

if TYPE_CHECKING:
    from torchdevice_core import Handle
    from torchdevice_core.session import Redirection


class PluginState:
    def __init__(self, settings: PluginSettings) -> None:
        self.settings = settings
        self.handle: Handle | None = None  # while active
        self.device: str | None = None  # the spec this process activated, e.g. "cpu" or "cuda:1"
        self.options: dict[str, Any] = settings.core_options()
        self.source = settings.source
        self._env_before: str | None = None

    @property
    def active(self) -> bool:
        return self.handle is not None and self.handle.active

    @property
    def redirection(self) -> Redirection | None:
        """The core's redirection in force, None when off."""
        return self.handle.session if self.handle is not None and self.handle.active else None

    @property
    def current(self) -> str | None:
        """The real device type:index tests run on (``cpu``, ``mps``, ``cuda:0``), None when off."""
        redirection = self.redirection
        if redirection is None:
            return None
        device = redirection.target.device
        return device.type if device.index is None else f"{device.type}:{device.index}"

    def header(self) -> str:
        redirection = self.redirection
        if redirection is None:
            return "torchdevice: off"
        setting = self.settings.target
        origin = f" (from {setting.origin})" if setting else ""
        line = f"torchdevice: {redirection.describe()}{origin}"
        profile = redirection.profile
        if profile is not None:
            line += f"; profile {self.settings.profile} ({profile.describe()})"
        if redirection.mps_limits:
            fallback = os.environ.get(MPS_FALLBACK_ENV) == "1"
            simulated = "simulated " if redirection.target.type != "mps" else ""
            line += (f"; {simulated}MPS limits: float64={self.settings.mps_float64}, "
                     f"cpu fallback={'on' if fallback else 'off'}")
        return line

    def activate(self, device: str, origin: str) -> None:
        """Activate ``device``; a failure is a usage error naming ``origin`` (where the device came from)."""
        import torchdevice_core as core

        try:
            if core.active() is not None and (self.handle is None or not self.handle.active):
                core.deactivate()  # inherited from a parent process through the .pth hook: this process decides
            self.handle = core.activate(device, source=self.source, **self.options)
        except core.TargetUnavailableError as exc:
            raise pytest.UsageError(f"{origin}={device!r}: {exc}") from None
        except core.UnsupportedTorchError as exc:
            raise pytest.UsageError(str(exc)) from None
        except (core.TargetSpecError, ValueError) as exc:
            raise pytest.UsageError(f"{origin}: {exc}") from None
        self.device = device
        self._export_env()

    def restore_if_lost(self) -> bool:
        """Bring the session's redirection back after a test ended it (``torchdevice_core.deactivate()``).

        Without this, one test that switches the library off would leave every later test of the process on
        the real torch ("Torch not compiled with CUDA enabled").  An activation the test left on in its place
        is undone first.  Returns whether anything had to be restored.
        """
        if self.handle is None or self.handle.active or self.device is None:
            return False
        import torchdevice_core as core

        core.deactivate()
        self.handle = core.activate(self.device, source=self.source, **self.options)
        return True

    def deactivate(self) -> None:
        if self.handle is not None:
            self.handle.deactivate()
            self.handle = None
        if self._env_before is None:
            os.environ.pop(SUBPROCESS_ENV, None)
        else:
            os.environ[SUBPROCESS_ENV] = self._env_before

    def _export_env(self) -> None:
        """Subprocesses (``python -c``, spawned workers) activate the same redirection via the .pth hook."""
        if self._env_before is None:
            self._env_before = os.environ.get(SUBPROCESS_ENV)
        os.environ[SUBPROCESS_ENV] = json.dumps(
            {"target": self.device, "source": self.source, "options": self.options}
        )

    @contextlib.contextmanager
    def switched(self, device: str) -> Iterator[None]:
        """Run one test against ``device`` (the ``devices`` marker), then come back."""
        import torchdevice_core as core

        if self.current is not None and matches(device, self.current):
            yield
            return
        try:
            target = core.resolve_target(device)
        except core.TargetUnavailableError as exc:
            pytest.skip(str(exc))
        previous = self.device if self.active else None
        if previous is not None and self.handle is not None:
            self.handle.deactivate()
        handle = self.handle = core.activate(str(target.device), source=self.source, **self.options)
        try:
            yield
        finally:
            handle.deactivate()
            self.handle = None
            if previous is not None:
                self.handle = core.activate(previous, source=self.source, **self.options)

