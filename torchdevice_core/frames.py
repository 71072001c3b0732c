"""Our frames out of the user's way: warnings point at the caller's line, pytest tracebacks skip our frames.

A warning raised inside a patched entry point (torch's C++ ``TORCH_WARN`` from the original factory, or a
Python ``warnings.warn(..., stacklevel=2)`` in a torch function our wrapper called) is attributed by Python
to the innermost Python frame, which is ours (``torchdevice_core/redirect/factories.py``).  The patch of
``warnings._showwarnmsg`` below moves such a warning to the first frame outside this package above that
frame: the user's line (or torch's, when torch called the patched entry point).  ``_showwarnmsg`` is what
both the C and the Python warning machinery call to show (or, under ``catch_warnings(record=True)`` and
pytest, to record) a warning, so this costs nothing until a warning is actually shown.  Python 3.12's
``warnings.warn(skip_file_prefixes=...)`` cannot help: the warnings come from code we do not own.

What it cannot change: the "once per location" bookkeeping of the ``default`` action happens before, with
our line, so two callers' identical warnings in one process count as one location (pytest resets this per
test).

Tracebacks: every module of this package gets a module-level ``__tracebackhide__ = True`` (pytest's
convention, read from a frame's globals), so a failure through our wrappers shows the test's line and
torch's frames, not ours.  ``pytest --full-trace`` shows everything (for a bug of ours).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

from .patching import Patch

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def ours(filename: str) -> bool:
    return filename.startswith(PACKAGE_DIR)


def caller_outside(frame: FrameType | None, filename: str, lineno: int) -> FrameType | None:
    """Above ``frame``, the frame at ``filename:lineno`` (else the first frame of ours), then the first frame
    outside this package beyond it; None when there is none."""
    start = frame
    found = None
    while frame is not None:
        if frame.f_code.co_filename == filename and frame.f_lineno == lineno:
            found = frame
            break
        frame = frame.f_back
    if found is None:
        found = start
        while found is not None and not ours(found.f_code.co_filename):
            found = found.f_back
    while found is not None and ours(found.f_code.co_filename):
        found = found.f_back
    return found


def relocating(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def _showwarnmsg(msg: Any) -> Any:
        if ours(str(getattr(msg, "filename", ""))):
            caller = caller_outside(sys._getframe(1), msg.filename, msg.lineno)
            if caller is not None:
                msg.filename, msg.lineno = caller.f_code.co_filename, caller.f_lineno
        return original(msg)

    _showwarnmsg.__wrapped__ = original  # type: ignore[attr-defined]
    return _showwarnmsg


def patches() -> list[Patch]:
    return [Patch(warnings, "_showwarnmsg", relocating(warnings._showwarnmsg),  # type: ignore[attr-defined]
                  "warnings raised inside patched entry points point at the caller")]


def hide_from_tracebacks() -> None:
    """Mark every loaded module of this package (idempotent; a module that sets its own value keeps it)."""
    for name, module in list(sys.modules.items()):
        if (name == __package__ or name.startswith(f"{__package__}.")) and module is not None:
            vars(module).setdefault("__tracebackhide__", True)
