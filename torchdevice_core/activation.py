"""Turning redirection on and off: one active redirection per process, nestable with the same settings."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import torch

from . import compat
from . import handlers as _handlers  # noqa: F401  (fills active_state.HANDLERS at import)
from .active_state import ACTIVE, CHECKS, LEDGER, TARGET, WRAPPER_IDENTITY
from .backends import backend_for
from .checks import check_devices
from .errors import ActivationError
from .patching import ItemPatch, Patch
from .session import Options, Redirection
from .spec import HardwareProbe, Target, parse_source, resolve_target
from .state import restore, snapshot

_lock = threading.RLock()


class _Activation:
    """The activation behind the handles: its session, nesting depth and suspension count.

    Everything it changed is on ``session.patcher`` (one undo stack): at the bottom what deactivation puts
    back (the process state before, the CUDA device before), above ``base`` the patches and hot flags that a
    suspension takes back and re-applies.
    """

    def __init__(self, session: Redirection) -> None:
        self.session = session
        self.patcher = session.patcher
        self.base = 0
        self.depth = 1
        self.suspended = 0


# What is activated (also while suspended): activation's own bookkeeping, read by no other module.  What is in
# effect is ``active_state.ACTIVE``.
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


def collect_patches(session: Redirection) -> list[Patch | ItemPatch]:
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
        overrides,
        per_sample,
        pinned,
        serialization,
        tensor_methods,
        wrappers,
    )

    out: list[Patch | ItemPatch] = []
    parts = (factories, tensor_methods, module, optim, default_device, generator, serialization, amp, distributed,
             compile, hooks, pinned, wrappers, data_parallel, fake, export, checkpoint, jit, func, per_sample,
             overrides)
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
    """Patch torch for ``act``'s session and set the hot flags, each change on the undo stack."""
    session, patcher = act.session, act.patcher
    patcher.defer(_forget_dynamo_rules, "dynamo's rule caches learnt our patches")  # (undone after them)
    for patch in collect_patches(session):
        patcher.apply(patch)
    patcher.setitem(ACTIVE, 0, session, "the redirection in effect")
    patcher.setitem(CHECKS, 0, check_devices if session.options.device_checks else None, "Options.device_checks")
    patcher.setitem(TARGET, 0, session.target.device, "what emulated tensors report inside compiled code")
    if session.options.emulate_identity and not session.native:
        from .redirect.wrappers import result_identity

        patcher.setitem(WRAPPER_IDENTITY, 0, result_identity(session), "wrapper subclasses of emulated tensors")
    # (Redirection.armed_ledger sets LEDGER[0] itself once memory is asked for: this entry puts it back too)
    patcher.setitem(LEDGER, 0, session.ledger if session.ledger_armed else None, "memory accounting")
    if session.options.track_memory:
        session.armed_ledger()
    if not session.native:
        from .generic import testing

        hook = testing.import_hook(session)  # patches PyTorch's test framework if it is imported later
        if hook is not None:
            patcher.enter(hook, "patch PyTorch's test framework when it is imported")
    if session.options.simulate_limits == "mps" and session.target.type != "mps":
        from .mps.simulation import SimulatedMpsLimits

        patcher.enter(SimulatedMpsLimits(session), "Options.simulate_limits='mps'")


def _unapply(act: _Activation) -> None:
    """Take back what ``_apply`` did (a suspension; deactivation undoes the whole stack)."""
    act.patcher.undo_to(act.base)


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
    try:
        act.patcher.undo_all()
    finally:
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
        act = _Activation(session)
        patcher = session.patcher
        try:
            before = snapshot(None)
            if session.native and resolved.device.index is not None:
                previous = torch.cuda.current_device()
                torch.cuda.set_device(resolved.device.index)
                patcher.defer(lambda: torch.cuda.set_device(previous), "the current CUDA device before")
            patcher.defer(lambda: restore(None, before), "the default device and autocast as before")
            act.base = patcher.depth
            _apply(act)
        except BaseException:
            patcher.undo_all()  # a failure half-way leaves nothing behind
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
