"""Fake (meta) copies of emulated tensors are made from the device the data really lives on.

``FakeTensorMode.from_tensor`` (used by ``torch.export``, ``make_fx(tracing_mode="fake"|"symbolic")``,
aot-autograd, ``torch.library.opcheck``...) describes a real tensor through its Python attributes.  An
emulated tensor would be described as ``cuda:0``, and the fake CUDA tensor then reaches C++ device guards
that ``terminate`` the interpreter ("PyTorch is not linked with support for cuda devices", rc 134) on a
build without CUDA: no exception, no test report.  So the conversion runs with real devices (see
``real.py``); what is traced from the fakes is what really runs (the CPU), as under ``torch.compile``.
The first emulated tensor made fake also switches aot-autograd's first-call aliasing check off (it refuses
tensor subclasses; ``compile.py`` does the same on the first ``torch.compile``), so ``aot_function`` and
``torch.library.opcheck`` work on emulated tensors too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch._subclasses import meta_utils

from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor
from .compile import aliasing_check_patch
from .real import real_devices

_MetaConverter = meta_utils.MetaConverter


def _make_call(session: Redirection, orig: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, t: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(t, EmulatedTensor):
            return orig(self, t, *args, **kwargs)
        late = aliasing_check_patch()
        if late is not None:
            session.apply_late(late)
        with real_devices():
            return orig(self, t, *args, **kwargs)

    __call__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __call__


def patches(session: Redirection) -> list[Patch]:
    if not session.options.emulate_identity:
        return []
    return [Patch(_MetaConverter, "__call__", _make_call(session, vars(_MetaConverter)["__call__"]),
                  "fake tensors of emulated tensors on their real device (a fake CUDA tensor aborts)")]
