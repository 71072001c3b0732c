"""The CI options (manifest, required CUDA paths) wired into a run; the plugin calls ``add_options`` and
``configure`` and nothing else of this."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from . import guard, manifest, runconfig
from .summary import Collector

if TYPE_CHECKING:
    from .runtime import PluginState

MANIFEST_PLUGIN = "torchdevice-manifest"
GUARD_PLUGIN = "torchdevice-cuda-path-guard"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchdevice")
    manifest.add_options(group)
    guard.add_options(group)


def configure(config: pytest.Config, state: PluginState, collector: Callable[[], Collector | None]) -> None:
    """Register what the options ask for, on the controller and (for the manifest) on xdist workers."""
    controller = getattr(config, "workerinput", None) is None
    wants_manifest = any(config.getoption(name) for name in ("torchdevice_manifest", "torchdevice_manifest_out",
                                                               "torchdevice_manifest_update"))
    if wants_manifest:
        if not state.active:
            raise pytest.UsageError("the --torchdevice-manifest options need an active target (--target-device)")
        plugin = manifest.ManifestPlugin(config, runconfig.of_state(state), collector)
        config.pluginmanager.register(plugin, MANIFEST_PLUGIN)
        if controller and config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(_XdistManifest(plugin), MANIFEST_PLUGIN + "-xdist")
        if controller:
            config.pluginmanager.register(_ManifestSummary(plugin, collector), MANIFEST_PLUGIN + "-summary")
    required = config.getoption("torchdevice_require_cuda_path")
    if required is not None and controller:
        config.pluginmanager.register(guard.CudaPathGuard(required, collector, state.active), GUARD_PLUGIN)


class _XdistManifest:
    """Registered only with xdist present (pytest rejects unknown hooks)."""

    def __init__(self, plugin: manifest.ManifestPlugin) -> None:
        self.plugin = plugin

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.plugin.gone_from_worker(node)


class _ManifestSummary:
    def __init__(self, plugin: manifest.ManifestPlugin, collector: Callable[[], Collector | None]) -> None:
        self.plugin = plugin
        self.collector = collector

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.plugin.terminal_lines(self.collector())
        if lines:
            terminalreporter.section("torchdevice: manifest")
            for line in lines:
                terminalreporter.write_line(line)
