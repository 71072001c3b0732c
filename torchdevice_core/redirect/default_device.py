"""``torch.set_default_device("cuda")`` and ``with torch.device("cuda"):``.

Both go through ``torch.utils._device.DeviceContext`` (the latter straight from C++), a TorchFunctionMode
that fills in ``device=`` for factory calls.  Its ``__torch_function__`` is patched on the class, so a
context naming the source device builds its tensors on the target.  ``get_default_device()`` then reports
the source device, as it would on CUDA.  The mode costs what it costs natively: only while one is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._device import DeviceContext, _device_constructors

from ..patching import Patch
from ..session import Redirection
from ..tensor import promote


def _make_torch_function(session: Redirection) -> Callable[..., Any]:
    constructors = _device_constructors()
    target = session.target.device
    hit = session.record.redirected

    def __torch_function__(self: DeviceContext, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in constructors and kwargs.get("device") is None:
            index = session.resolve(self.device)
            if index is None:
                kwargs["device"] = self.device
                return func(*args, **kwargs)
            kwargs["device"] = target
            hit("torch.set_default_device")
            out = func(*args, **kwargs)
            if session.options.emulate_identity and type(out) is torch.Tensor:
                promote(out, session.slot_class(index))
            return out
        return func(*args, **kwargs)

    return __torch_function__


def patches(session: Redirection) -> list[Patch]:
    return [
        Patch(DeviceContext, "__torch_function__", _make_torch_function(session), "redirect the default device")
    ]
