"""Helpers shared by the emulated torch.cuda modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection


def namespace(session: Redirection) -> Any:
    """The module being emulated: ``torch.cuda`` (or ``torch.mps`` for an mps source)."""
    return getattr(torch, session.source)


def emulated(session: Redirection, name: str, fn: Callable[..., Any], owner: Any = None,
             why: str = "emulated") -> Patch:
    """A patch of ``torch.<source>.<name>``; ``fn`` is a fresh function object for this name only."""
    api = f"torch.{session.source}.{name}"
    hit = session.record.emulated

    def counted(*args: Any, **kwargs: Any) -> Any:
        hit(api)
        return fn(*args, **kwargs)

    counted.__name__ = counted.__qualname__ = name
    counted.__doc__ = f"torchdevice: {why} on {session.target.device}."
    counted.__wrapped__ = fn  # type: ignore[attr-defined]
    return Patch(owner if owner is not None else namespace(session), name, counted, why)


def per_caller(session: Redirection, name: str, fn: Callable[..., Any], owner: Any = None) -> Patch:
    """Like ``emulated``, but torch's own modules (``Options.real_callers``) get the original's answer."""
    target = owner if owner is not None else namespace(session)
    original = getattr(target, name)
    api = f"torch.{session.source}.{name}"
    hit = session.record.emulated
    real_caller = session.real_caller

    def answer(*args: Any, **kwargs: Any) -> Any:
        if real_caller():
            return original(*args, **kwargs)
        hit(api)
        return fn(*args, **kwargs)

    answer.__name__ = answer.__qualname__ = name
    answer.__doc__ = f"torchdevice: emulated for user code, real for {', '.join(session.options.real_callers)}."
    answer.__wrapped__ = fn  # type: ignore[attr-defined]
    return Patch(target, name, answer, "emulated (per caller)")
