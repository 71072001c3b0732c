"""What is active: the one home of the process-wide state every patched entry point and the hot path read.

A leaf module: it imports nothing from this package, so ``tensor``, ``session``, ``activation``, ``memory``
and the redirects all import it and none of them imports another to reach its state.

Each value is a one-element list (or a dict): the hot path reads ``ACTIVE[0]`` as a module global, which is
cheaper than an attribute of a module object or of a session, and the list itself never changes identity,
so ``from .active import ACTIVE`` stays valid.  Only ``activation`` writes them, and only through its undo
stack (``patching.Patcher.setitem``), so deactivation puts every one back; the exceptions are said below.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (types only: at run time this module imports nothing of the package)
    import torch

    from .memory import StorageLedger
    from .session import Redirection

# The redirection in effect (a ``session.Redirection``): torch is patched for it right now.  None when nothing
# is activated and while a handle is suspended (``Handle.suspended()`` runs against the real torch): one
# pointer, one meaning, and ``torchdevice_core.active()`` returns it.
ACTIVE: list[Redirection | None] = [None]

# The device check of the active redirection (``checks.check_devices``), None when ``Options.device_checks``
# is off: the hot path calls it without a flag test of its own.
CHECKS: list[Callable[..., None] | None] = [None]

# The ``memory.StorageLedger`` once memory statistics were asked for (``Redirection.armed_ledger`` sets it
# while active), else None: until then ops pay nothing for accounting.
LEDGER: list[StorageLedger | None] = [None]

# > 0 while a torch.compile'd callable runs (redirect/compile.py): its graphs were traced with real devices
# (factories inside bake in device="cpu"), so tensors are what they really are until the call returns.
# Counted up and down around each call, not by the activation.
IN_COMPILED: list[int] = [0]

# The target every emulated tensor really lives on : what they report inside compiled
# code (reading the tensor's own device there would send dynamo back into the class's ``device`` property).
TARGET: list[torch.device | None] = [None]

# Gives a wrapper-subclass result of an op on emulated tensors the emulated identity
# (``redirect.wrappers.result_identity``), None when identity is off.
WRAPPER_IDENTITY: list[Callable[[Any, int], Any] | None] = [None]

# ``.marks`` while torch.save runs (redirect/serialization.py): storages of emulated tensors being pickled ->
# their device.  Per thread, set and reset around each save.
SAVING = threading.local()

Handler = Callable[[type, Any, tuple, dict], Any]

# torch function -> the handler ``EmulatedTensor.__torch_function__`` calls instead of the op.  Filled by
# ``handlers.py`` at import (the fixed entries) and by the activation for the patched Tensor methods.
HANDLERS: dict[Any, Handler] = {}
