"""The pytest11 entry point ``torchdevice``: ``pytest --target-device=cpu`` on a CUDA-written suite.

Redirection is activated in ``pytest_load_initial_conftests``, before any conftest or test module is
imported, so module-level ``skipif(not torch.cuda.is_available())`` already sees the emulated CUDA; it is
undone at the end of the session.  Nothing happens (torch is not even imported) unless a target is asked
for on the command line, in ``$PYTEST_TARGET_DEVICE`` or in the ``target_device`` ini key.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from torchdevice_core.grammar import MPS_FALLBACK_ENV

from . import causes, ci, hooks, markers, runconfig
from .fixtures import DIFF_KEY, RECORD_KEY, STATE_KEY, _torchdevice_device, target_device, torchdevice
from .options import add_options, read_settings
from .runtime import PluginState
from .summary import PROPERTY, Collector, test_record
from .xdist import WORKERINPUT_KEY, XdistHooks, assign_device, env_worker, worker_index

__all__ = ["_torchdevice_device", "target_device", "torchdevice"]

COLLECTOR_KEY = pytest.StashKey[Collector]()
_FALLBACK_WARNING = re.compile(r"The operator '([\w:.]+)' is not currently supported on the MPS backend")
SNAPSHOT_KEY = pytest.StashKey[Any]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser, lambda: plugin_targets(pluginmanager))
    ci.add_options(parser)


def plugin_targets(pluginmanager: pytest.PytestPluginManager) -> dict[str, tuple[Any, Any]]:
    """Targets plugins add (``pytest_torchdevice_register_targets``), asked once per plugin manager.

    They enter the core's registry only for the session that activates (and leave it at its end).
    """
    found: dict[str, tuple[Any, Any]] | None = getattr(pluginmanager, "_torchdevice_targets", None)
    if found is None:
        found = {}

        def register(name: str, make_backend: Any, is_available: Any = lambda: True) -> None:
            found[str(name).lower()] = (make_backend, is_available)

        pluginmanager.hook.pytest_torchdevice_register_targets(register=register)
        pluginmanager._torchdevice_targets = found  # type: ignore[attr-defined]
    return found


def _cuda_count() -> int:
    import torchdevice_core.spec as spec

    return spec.RealProbe().cuda_device_count()


def decide_device(config: pytest.Config, worker_id: str | None) -> str | None:
    """The device spec this process (or xdist worker ``worker_id``) activates; None when off."""
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.settings.target is None:
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
    return assign_device(requested, worker_index(worker_id or ""), _cuda_count())


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    targets = plugin_targets(early_config.pluginmanager)
    settings = read_settings(early_config, dict(os.environ), targets)
    state = PluginState(settings)
    early_config.stash[STATE_KEY] = state
    if settings.target is None:
        return
    early_config.hook.pytest_torchdevice_options(config=early_config, options=state.options)
    if targets:
        from torchdevice_core.registry import register_target

        for name, (make_backend, is_available) in targets.items():
            register_target(name, make_backend, is_available)
            early_config.add_cleanup(lambda name=name: _unregister(name))  # type: ignore[misc]
    _enable_mps_fallback(early_config, state)
    worker = env_worker()
    device = decide_device(early_config, worker)
    assert device is not None
    early_config.add_cleanup(state.deactivate)
    state.activate(device, settings.target.origin)


def _enable_mps_fallback(config: pytest.Config, state: PluginState) -> None:
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
            f"torch was imported before pytest-torchdevice could set {MPS_FALLBACK_ENV}=1: operators without an MPS "
            f"kernel will raise; set {MPS_FALLBACK_ENV}=1 in the environment to let them fall back to the CPU"
        ), stacklevel=1)
    os.environ[MPS_FALLBACK_ENV] = "1"
    config.add_cleanup(lambda: _unset(MPS_FALLBACK_ENV))


def _unregister(name: str) -> None:
    from torchdevice_core.registry import unregister_target

    unregister_target(name)


def _unset(name: str) -> None:
    os.environ.pop(name, None)


def pytest_configure(config: pytest.Config) -> None:
    markers.register(config)
    state = config.stash.get(STATE_KEY, None)
    if state is None:  # load_initial_conftests did not run (e.g. plugin loaded late): resolve now
        state = PluginState(read_settings(config, dict(os.environ)))
        config.stash[STATE_KEY] = state
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(decide_device), "torchdevice-xdist")
    if workerinput is not None and state.active and workerinput.get(WORKERINPUT_KEY):
        wanted = workerinput[WORKERINPUT_KEY]
        if wanted != state.device:  # a select_device hook on the controller chose differently
            state.deactivate()
            state.activate(wanted, "controller")
    if state.active and workerinput is None:
        session = state.session
        config.stash[COLLECTOR_KEY] = Collector(session.describe(), session.requested_source,
                                                str(session.target.device), session.sources,
                                                runconfig.of_state(state))
    elif state.settings.report_path and workerinput is None and state.settings.target is not None:
        config.stash[COLLECTOR_KEY] = Collector("off", "cuda", "off")
    ci.configure(config, state, lambda: config.stash.get(COLLECTOR_KEY, None))


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.settings.target is not None:
        lines.append(state.header())
    yielded = markers.header_line(config)
    if yielded:
        lines.append(yielded)
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = config.stash.get(STATE_KEY, None)
    current = state.current if state is not None else None
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("_torchdevice_device") if callspec is not None else None
        markers.apply(item, param or current, _has_real_cuda)
    markers.raise_errors(config)


def _has_real_cuda() -> bool:
    return _cuda_count() > 0


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    devices = markers.devices_of(metafunc.definition)
    if devices:
        metafunc.parametrize("_torchdevice_device", devices, ids=list(devices), indirect=True)


# ---------------------------------------------------------------------------------------------- per test
def _state(item: pytest.Item) -> PluginState | None:
    state = item.config.stash.get(STATE_KEY, None)
    return state if state is not None and state.active else None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    state = _state(item)
    if state is not None:
        from torchdevice_core.state import snapshot

        item.stash[SNAPSHOT_KEY] = snapshot(state.session)
        item.stash[RECORD_KEY] = state.session.record.snapshot()
        if state.settings.seed is not None:
            import torch

            torch.manual_seed(state.settings.seed)
    return (yield from _unemulatable_as_skip(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _unemulatable_as_skip(item))


def _unemulatable_as_skip(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except BaseException as exc:
        gap = _find_target_gap(exc)
        if gap is not None:  # the target lacks a kernel the source device has: skip, or fail when strict
            state = item.config.stash.get(STATE_KEY, None)
            if state is not None and state.settings.strict:
                raise
            raise pytest.skip.Exception(f"torchdevice: {gap.reason}", _use_item_location=True) from None
        error = _find_unemulatable(exc)
        if error is None:
            raise
        decision = item.config.hook.pytest_torchdevice_unemulatable(item=item, error=error)
        state = item.config.stash.get(STATE_KEY, None)
        if decision is None:
            decision = "fail" if state is not None and state.settings.strict else "skip"
        if decision == "skip":
            raise pytest.skip.Exception(f"torchdevice: {error}", _use_item_location=True) from None
        if decision == "xfail":
            raise pytest.xfail.Exception(f"torchdevice: {error}") from None
        raise


def _in_chain(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` in ``exc``'s cause/context chain (a library may have wrapped it), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _find_target_gap(exc: BaseException) -> Any:
    """The core's TargetGapError in ``exc``'s chain, or None."""
    from torchdevice_core.errors import TargetGapError

    return _in_chain(exc, TargetGapError)


def _find_unemulatable(exc: BaseException) -> BaseException | None:
    try:
        from torchdevice_core.errors import UnemulatableError
    except ImportError:  # pragma: no cover - the core ships with the plugin
        return None
    return _in_chain(exc, UnemulatableError)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        snap = item.stash.get(SNAPSHOT_KEY, None)
        raw = item.config.stash.get(STATE_KEY, None)
        if raw is not None and snap is not None:
            raw.restore_if_lost()
        state = _state(item)
        if state is not None and snap is not None:
            from torchdevice_core.state import restore

            restore(state.session, snap)


def _record_since_start(item: pytest.Item) -> Any:
    """This test's redirect record so far (a RecordSnapshot), or None when nothing was active."""
    diff = item.stash.get(DIFF_KEY, None)
    state = _state(item)
    if diff is None and state is not None:
        start = item.stash.get(RECORD_KEY, None)
        if start is not None:
            diff = state.session.record.snapshot().minus(start)
    return diff


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    causes.remember(item, call)
    if call.when == "call" and report.passed and not hasattr(report, "wasxfail"):
        diff = _record_since_start(item)
        refused = diff.apis("refused") if diff is not None else []
        if refused:  # the test caught the error of an API that cannot be emulated: its pass says nothing
            state = item.config.stash.get(STATE_KEY, None)
            reason = (f"torchdevice: called {', '.join(refused)}, which cannot be emulated on "
                      f"{state.current if state else 'the target'} (the test caught the error)")
            if state is not None and state.settings.strict:
                report.outcome = "failed"
                report.longrepr = reason
            else:
                report.outcome = "skipped"
                report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {reason}")
    if call.when == "teardown":
        diff = _record_since_start(item)
        if diff is not None:
            record = test_record(diff, root=str(item.config.rootpath))
            report.user_properties.append((PROPERTY, causes.annotate(record, item)))
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    collector = session.config.stash.get(COLLECTOR_KEY, None)
    if collector is not None:
        session.config.pluginmanager.register(_CollectorPlugin(collector), "torchdevice-collector")


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


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collector = config.stash.get(COLLECTOR_KEY, None)
    state = config.stash.get(STATE_KEY, None)
    if collector is None or state is None or not collector.tests:
        return
    terminalreporter.section(f"torchdevice: {collector.title()}")
    for line in collector.terminal_lines():
        terminalreporter.write_line(line)
    if state.settings.report_path:
        terminalreporter.write_line(f"report written to {state.settings.report_path}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    collector = session.config.stash.get(COLLECTOR_KEY, None)
    state = session.config.stash.get(STATE_KEY, None)
    if collector is not None and state is not None and state.settings.report_path:
        collector.write(state.settings.report_path)
