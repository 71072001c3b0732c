"""The plugin's per-process state: the active handle, the chosen device, and switching for ``devices``."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from torchdevice_core.grammar import MPS_FALLBACK_ENV, SUBPROCESS_ENV, matches

from .options import PluginSettings


class PluginState:
    def __init__(self, settings: PluginSettings) -> None:
        self.settings = settings
        self.handle: Any = None  # torchdevice_core.Handle while active
        self.device: str | None = None  # the spec this process activated, e.g. "cpu" or "cuda:1"
        self.options: dict[str, Any] = settings.core_options()
        self.source = settings.source
        self._env_before: str | None = None

    @property
    def active(self) -> bool:
        return self.handle is not None and self.handle.active

    @property
    def session(self) -> Any:
        return self.handle.session if self.active else None

    @property
    def current(self) -> str | None:
        """The real device type:index tests run on (``cpu``, ``mps``, ``cuda:0``), None when off."""
        session = self.session
        if session is None:
            return None
        device = session.target.device
        return device.type if device.index is None else f"{device.type}:{device.index}"

    def header(self) -> str:
        if not self.active:
            return "torchdevice: off"
        setting = self.settings.target
        origin = f" (from {setting.origin})" if setting else ""
        line = f"torchdevice: {self.session.describe()}{origin}"
        profile = self.session.profile
        if profile is not None:
            line += f"; profile {self.settings.profile} ({profile.describe()})"
        if self.session.mps_limits:
            fallback = os.environ.get(MPS_FALLBACK_ENV) == "1"
            simulated = "simulated " if self.session.target.type != "mps" else ""
            line += (f"; {simulated}MPS limits: float64={self.settings.mps_float64}, "
                     f"cpu fallback={'on' if fallback else 'off'}")
        return line

    def activate(self, device: str, source_name: str) -> None:
        import torchdevice_core as core

        try:
            if core.active() is not None and (self.handle is None or not self.handle.active):
                core.deactivate()  # inherited from a parent process through the .pth hook: this process decides
            self.handle = core.activate(device, source=self.source, **self.options)
        except core.TargetUnavailableError as exc:
            raise pytest.UsageError(f"{source_name}={device!r}: {exc}") from None
        except core.UnsupportedTorchError as exc:
            raise pytest.UsageError(str(exc)) from None
        except (core.TargetSpecError, ValueError) as exc:
            raise pytest.UsageError(f"{source_name}: {exc}") from None
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
        if previous is not None:
            self.handle.deactivate()
        self.handle = core.activate(str(target.device), source=self.source, **self.options)
        try:
            yield
        finally:
            self.handle.deactivate()
            self.handle = None
            if previous is not None:
                self.handle = core.activate(previous, source=self.source, **self.options)

