"""The pytest11 entry point ``torchdevice``: ``pytest --target-device=cpu`` on a CUDA-written suite.

Redirection is activated in ``pytest_load_initial_conftests``, before any conftest or test module is
imported, so module-level ``skipif(not torch.cuda.is_available())`` already sees the emulated CUDA; it is
undone at the end of the session.  Nothing happens (torch is not even imported) unless a target is asked
for on the command line, in ``$PYTEST_TARGET_DEVICE`` or in the ``target_device`` ini key.

This module keeps the hooks that run before the run's state exists; that state and every hook that needs
it live in one ``TorchDevicePlugin``, registered as ``torchdevice-session`` (pytest-cov's pattern).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from . import ci, hooks, markers, pertest, runconfig
from .fixtures import DEVICE_PARAMETER, PLUGIN_NAME, device_parameter, target_device, torchdevice
from .options import add_options, read_settings
from .runtime import PluginState
from .startup import (
    PluginTargets,
    cuda_count,
    decide_device,
    enable_mps_fallback,
    plugin_targets,
    register_plugin_targets,
)
from .summary import Collector
from .xdist import WORKERINPUT_KEY, XdistHooks, env_worker

__all__ = ["PLUGIN_NAME", "TorchDevicePlugin", "device_parameter", "target_device", "torchdevice"]

_FALLBACK_WARNING = re.compile(r"The operator '([\w:.]+)' is not currently supported on the MPS backend")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser, lambda: plugin_targets(pluginmanager))
    ci.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    targets = plugin_targets(early_config.pluginmanager)
    plugin = TorchDevicePlugin(early_config, PluginState(read_settings(early_config, dict(os.environ), targets)))
    early_config.pluginmanager.register(plugin, PLUGIN_NAME)
    plugin.start(targets)


def pytest_configure(config: pytest.Config) -> None:
    markers.register(config)
    if config.pluginmanager.get_plugin(PLUGIN_NAME) is None:  # load_initial_conftests did not run (loaded late)
        state = PluginState(read_settings(config, dict(os.environ)))
        config.pluginmanager.register(TorchDevicePlugin(config, state), PLUGIN_NAME)  # its configure runs now


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    devices = markers.devices_of(metafunc.definition)
    if devices:
        metafunc.parametrize(DEVICE_PARAMETER, devices, ids=list(devices), indirect=True)


class TorchDevicePlugin:
    """The run's state (settings, handle, collector) and the hooks that read it."""

    def __init__(self, config: pytest.Config, state: PluginState) -> None:
        self.config = config
        self.state = state
        self.collector: Collector | None = None

    def start(self, targets: PluginTargets) -> None:
        """Activate the requested target (before any conftest is imported)."""
        config, state = self.config, self.state
        setting = state.settings.target
        if setting is None:
            return
        config.hook.pytest_torchdevice_options(config=config, options=state.options)
        config.add_cleanup(state.changes.undo_all)  # after state.deactivate (cleanups run last first)
        register_plugin_targets(state, targets)
        enable_mps_fallback(config, state)
        device = decide_device(config, state, env_worker())
        assert device is not None
        config.add_cleanup(state.deactivate)
        state.activate(device, setting.origin)

    def decide_device(self, config: pytest.Config, worker_id: str | None) -> str | None:
        return decide_device(config, self.state, worker_id)

    @pytest.hookimpl
    def pytest_configure(self, config: pytest.Config) -> None:
        state = self.state
        workerinput = getattr(config, "workerinput", None)
        if workerinput is None and config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(self.decide_device), "torchdevice-xdist")
        if workerinput is not None and state.active and workerinput.get(WORKERINPUT_KEY):
            wanted = workerinput[WORKERINPUT_KEY]
            if wanted != state.device:  # a select_device hook on the controller chose differently
                state.deactivate()
                state.activate(wanted, "controller")
        redirection = state.redirection
        if redirection is not None and workerinput is None:
            self.collector = Collector(redirection.describe(), redirection.requested_source,
                                       str(redirection.target.device), redirection.sources,
                                       runconfig.of_state(state))
        elif state.settings.report_path and workerinput is None and state.settings.target is not None:
            self.collector = Collector("off", "cuda", "off")
        ci.configure(config, state, lambda: self.collector)

    @pytest.hookimpl
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        if self.state.settings.target is not None:
            lines.append(self.state.header())
        yielded = markers.header_line(config)
        if yielded:
            lines.append(yielded)
        return lines

    @pytest.hookimpl
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        current = self.state.current
        for item in items:
            callspec = getattr(item, "callspec", None)
            param = callspec.params.get(DEVICE_PARAMETER) if callspec is not None else None
            markers.apply(item, param or current, lambda: cuda_count() > 0)
        markers.raise_errors(config)

    # ------------------------------------------------------------------------------------------ per test
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        pertest.start(item, self.state)
        return (yield from pertest.unemulatable_as_skip(item, self.state))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from pertest.unemulatable_as_skip(item, self.state))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            pertest.finish(item, self.state)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report = yield
        pertest.amend_report(item, call, report, self.state)
        return report

    # -------------------------------------------------------------------------------------------- summary
    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.collector is not None:
            session.config.pluginmanager.register(_CollectorPlugin(self.collector), "torchdevice-collector")

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        collector = self.collector
        if collector is None or not collector.tests:
            return
        terminalreporter.section(f"torchdevice: {collector.title()}")
        for line in collector.terminal_lines():
            terminalreporter.write_line(line)
        if self.state.settings.report_path:
            terminalreporter.write_line(f"report written to {self.state.settings.report_path}")

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.collector is not None and self.state.settings.report_path:
            self.collector.write(self.state.settings.report_path)


class _CollectorPlugin:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report)

    @pytest.hookimpl
    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, when: str, nodeid: str,
                                location: Any) -> None:
        match = _FALLBACK_WARNING.search(str(warning_message.message))
        if match and nodeid and self.collector.target.startswith("mps"):
            self.collector.add_mps(nodeid, f"{match.group(1)} (cpu fallback)")
