"""Turning redirection on and off: one active redirection per process, nestable with the same settings."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import torch

from . import compat, handlers
from .active_state import ACTIVE, CHECKS, LEDGER, TARGET, WRAPPER_IDENTITY
from .backends import backend_for
from .checks import check_devices
from .errors import ActivationError
from .patching import Patch, Patcher
from .session import Options, Redirection
from .spec import HardwareProbe, Target, parse_source, resolve_target
from .state import StateSnapshot, restore, snapshot

_lock = threading.RLock()
_HANDLED_METHODS = ("to", "cuda", "type", "pin_memory", "is_pinned")


class _Activation:
    """The applied state behind the handles: patches, handler registrations, what to restore."""

    def __init__(self, session: Redirection, patcher: Patcher, handlers: list[Any], before: StateSnapshot,
                 previous_cuda_device: int | None) -> None:
        self.session = session
        self.patcher = patcher
        self.handlers = handlers
        self.before = before
        self.previous_cuda_device = previous_cuda_device
        self.depth = 1
        self.suspended = 0
        self.contexts: list[Any] = []  # entered context managers (the MPS simulation mode), exited in reverse


_current: _Activation | None = None


class Handle:
    """What ``activate()`` returns: deactivate it (or use it as a context manager) to undo its activation."""

    def __init__(self, activation: _Activation) -> None:
        self._activation = activation
        self._closed = False

    @property
    def session(self) -> Redirection:
        return self._activation.session

    @property
    def target(self) -> Target:
        return self._activation.session.target

    @property
    def record(self) -> Any:
        return self._activation.session.record

    @property
    def active(self) -> bool:
        return not self._closed and _current is self._activation

    def deactivate(self) -> None:
        with _lock:
            if self._closed:
                return
            self._closed = True
            if _current is self._activation:  # a deactivate() may already have ended it: not ours to release
                _release(self._activation)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """Run a block against the real torch: patches are undone for its duration and re-applied after."""
        with _lock:
            act = self._activation
            act.suspended += 1
            if act.suspended == 1:
                _unapply(act)
        try:
            yield
        finally:
            with _lock:
                act.suspended -= 1
                if act.suspended == 0 and _current is act:
                    _apply(act)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def __repr__(self) -> str:
        state = "active" if self.active else "inactive"
        return f"<torchdevice Handle {self.session.describe()} ({state})>"


def collect_patches(session: Redirection) -> list[Patch]:
    """Every patch this session needs, in the order they are applied."""
    if session.native:
        return []
    from . import emulation as emulated_cuda
    from . import frames
    from .mps import namespace as mps_namespace
    from .redirect import (
        amp,
        checkpoint,
        compile,
        data_parallel,
        default_device,
        distributed,
        export,
        factories,
        fake,
        func,
        generator,
        hooks,
        jit,
        lazy,
        module,
        optim,
        per_sample,
        pinned,
        serialization,
        tensor_methods,
        wrappers,
    )

    out: list[Patch] = []
    parts = (factories, tensor_methods, module, optim, default_device, generator, serialization, amp, distributed,
             compile, hooks, pinned, wrappers, data_parallel, fake, export, checkpoint, jit, func, per_sample)
    for part in parts:
        out.extend(part.patches(session))
    out.extend(lazy.patches(session, out))
    if "cuda" in session.sources:
        out.extend(emulated_cuda.patches(session))
    if "mps" in session.sources:
        out.extend(mps_namespace.patches(session))
    from .generic import accelerator, events, libraries, testing

    for generic in (accelerator, events, libraries, testing):
        out.extend(generic.patches(session))
    out.extend(frames.patches())  # warnings from inside our wrappers point at the caller
    frames.hide_from_tracebacks()
    return out


def _apply(act: _Activation) -> None:
    patcher = act.patcher
    for patch in collect_patches(act.session):
        patcher.apply(patch)
    act.handlers = []
    for applied in patcher.applied:
        p = applied.patch
        if p.owner is torch.Tensor and p.name in _HANDLED_METHODS:
            # torch's C dispatch looks the method up on the class: it finds the function inside the descriptor
            for key in (p.replacement, getattr(p.replacement, "fn", p.replacement)):
                handlers.register_handler(key, getattr(torch._C.TensorBase, p.name))
                act.handlers.append(key)
    ACTIVE[0] = act.session
    act.session.apply_late = patcher.apply
    CHECKS[0] = check_devices if act.session.options.device_checks else None
    TARGET[0] = act.session.target.device
    if act.session.options.emulate_identity and not act.session.native:
        from .redirect.wrappers import result_identity

        WRAPPER_IDENTITY[0] = result_identity(act.session)
    if act.session.options.track_memory:
        act.session.armed_ledger()
    LEDGER[0] = act.session.ledger if act.session.ledger_armed else None
    if not act.session.native:
        from .generic import testing

        hook = testing.import_hook(act.session)  # patches PyTorch's test framework if it is imported later
        if hook is not None:
            act.contexts.append(hook.__enter__())
    if act.session.options.simulate_limits == "mps" and act.session.target.type != "mps":
        from .mps.simulation import SimulatedMpsLimits

        mode = SimulatedMpsLimits(act.session)
        mode.__enter__()
        act.contexts.append(mode)


def _unapply(act: _Activation) -> None:
    while act.contexts:
        act.contexts.pop().__exit__(None, None, None)
    ACTIVE[0] = None
    CHECKS[0] = None
    LEDGER[0] = None
    TARGET[0] = None
    WRAPPER_IDENTITY[0] = None
    for fn in act.handlers:
        handlers.unregister_handler(fn)
    act.handlers = []
    act.patcher.undo_all()
    _forget_dynamo_rules()


def _forget_dynamo_rules() -> None:
    """Dynamo caches which torch object maps to which tracing rule; drop what it learnt about our patches."""
    rules = sys.modules.get("torch._dynamo.trace_rules")
    if rules is None:
        return
    for name in ("get_torch_obj_rule_map", "_allowed_callable_ids", "_disallowed_callable_ids",
                 "_builtin_function_ids", "_numpy_function_ids", "_nonstrict_trace_callable_ids"):
        cached = getattr(rules, name, None)
        clear = getattr(cached, "cache_clear", None) or getattr(getattr(cached, "function_ids", None), "clear", None)
        if callable(clear):
            clear()
        if cached is not None and hasattr(cached, "function_ids"):
            cached.function_ids = None


def _release(act: _Activation) -> None:
    global _current
    act.depth -= 1
    if act.depth > 0:
        return
    if act.suspended == 0:
        _unapply(act)
    restore(None, act.before)
    if act.previous_cuda_device is not None:
        torch.cuda.set_device(act.previous_cuda_device)
    _current = None


def activate(target: str = "auto", *, source: str = "cuda", probe: HardwareProbe | None = None,
             **options: Any) -> Handle:
    """Redirect ``source`` device code (default ``cuda``) to ``target`` until the handle is deactivated.

    ``target``: ``"cpu"``, ``"mps"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (cuda, else mps, else cpu).
    ``options``: the fields of :class:`Options` (``device_count``, ``emulate_identity``, ``device_checks``...).
    Activating again with the same settings nests (each handle must be deactivated); different settings
    while active raise ``ActivationError``.  A target the machine lacks raises ``TargetUnavailableError``.
    """
    global _current
    compat.check()  # before anything is patched: a torch without an internal we need fails here, by name
    resolved = resolve_target(target, probe)
    src = parse_source(source)
    opts = Options(**options)
    with _lock:
        if _current is not None:
            cur = _current.session
            if (cur.source, cur.target.device, cur.options) != (src, resolved.device, opts):
                raise ActivationError(
                    f"torchdevice is already active ({cur.describe()}); deactivate it before activating "
                    f"{src} -> {resolved.device} or with other options"
                )
            _current.depth += 1
            return Handle(_current)
        backend = None if resolved.type == src else backend_for(resolved)
        session = Redirection(src, resolved, backend, opts)
        before = snapshot(None)
        previous = None
        if session.native and resolved.device.index is not None:
            previous = torch.cuda.current_device()
            torch.cuda.set_device(resolved.device.index)
        act = _Activation(session, Patcher(), [], before, previous)
        try:
            _apply(act)
        except BaseException:
            _unapply(act)
            raise
        _current = act
        return Handle(act)


def deactivate() -> None:
    """Deactivate completely, whatever the nesting depth (handles of it become inactive)."""
    with _lock:
        act = _current
        if act is None:
            return
        act.depth = 1
        _release(act)


def active() -> Redirection | None:
    """The redirection in effect, or None: also None inside ``Handle.suspended()``, where torch is the real one
    (``active_state.ACTIVE``: one pointer, one meaning)."""
    return ACTIVE[0]


@contextlib.contextmanager
def redirected(target: str = "auto", **kwargs: Any) -> Iterator[Handle]:
    """``with redirected("cpu"):``: activate for the block and deactivate after it."""
    handle = activate(target, **kwargs)
    try:
        yield handle
    finally:
        handle.deactivate()
