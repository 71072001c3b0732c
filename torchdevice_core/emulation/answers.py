"""Helpers shared by the emulated torch.cuda modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection
from ..spec import RealProbe


def namespace(session: Redirection, source: str | None = None) -> Any:
    """The module being emulated: ``torch.cuda`` (or ``torch.mps`` for an mps source)."""
    return getattr(torch, source or session.source)


def emulated(session: Redirection, name: str, fn: Callable[..., Any], owner: Any = None,
             why: str = "emulated", source: str | None = None, api: str | None = None) -> Patch:
    """A patch of ``torch.<source>.<name>`` (or ``owner.name``, reported as ``api``); ``fn`` is a fresh
    function object for this name only (dynamo refuses one object under two names: torch.cuda.synchronize
    and torch.mps.synchronize must differ)."""
    source = source or session.source
    api = api or f"torch.{source}.{name}"
    hit = session.record.emulated
    real_caller = session.real_caller

    def counted(*args: Any, **kwargs: Any) -> Any:
        if not real_caller():  # torch's own calls (torch.manual_seed -> manual_seed_all) are not the test's queries
            hit(api)
        return fn(*args, **kwargs)

    counted.__name__ = counted.__qualname__ = name
    counted.__doc__ = f"torchdevice: {why} on {session.target.device}."
    counted.__wrapped__ = fn  # type: ignore[attr-defined]
    return Patch(owner if owner is not None else namespace(session, source), name, counted, why)


def source_hardware_present(session: Redirection, source: str | None = None) -> bool:
    """Whether the machine really has the source device type (then its own queries can answer)."""
    probe = RealProbe()
    return probe.cuda_device_count() > 0 if (source or session.source) == "cuda" else probe.mps_available()


def per_caller(session: Redirection, name: str, fn: Callable[..., Any], owner: Any = None, *,
               needs_hardware: bool = False, source: str | None = None) -> Patch:
    """Like ``emulated``, but torch's own modules (``Options.real_callers``) get the original's answer.

    ``needs_hardware``: a query about one device (capability, properties...) that torch reaches for an
    emulated tensor it was told ``is_cuda`` (``dist.broadcast`` does).  Where the machine has no such device
    the original can only raise, so torch's own modules get the emulated answer too.
    """
    source = source or session.source
    target = owner if owner is not None else namespace(session, source)
    original = getattr(target, name)
    api = f"{getattr(target, '__name__', 'torch.' + source)}.{name}"
    hit = session.record.emulated
    real_caller = session.real_caller
    real_ok = not needs_hardware or source_hardware_present(session, source)

    def answer(*args: Any, **kwargs: Any) -> Any:
        if real_ok and real_caller():
            return original(*args, **kwargs)
        hit(api)
        return fn(*args, **kwargs)

    answer.__name__ = answer.__qualname__ = name
    answer.__doc__ = f"torchdevice: emulated for user code, real for {', '.join(session.options.real_callers)}."
    answer.__wrapped__ = fn  # type: ignore[attr-defined]
    return Patch(target, name, answer, "emulated (per caller)")
