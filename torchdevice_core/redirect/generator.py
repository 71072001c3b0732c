"""``torch.Generator(device="cuda")`` -> a generator of the target.

``torch.Generator`` is a C type; the replacement is a subclass whose ``__new__`` returns a genuine
``torch._C.Generator`` for the target, and whose metaclass keeps ``isinstance(g, torch.Generator)`` true
for every generator, including ``torch.default_generator``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..patching import Patch
from ..session import Redirection

_RealGenerator = torch._C.Generator


class _GeneratorMeta(type(_RealGenerator)):  # type: ignore[misc]
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, _RealGenerator)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _RealGenerator)


def _make_generator(session: Redirection) -> type:
    def __new__(cls: type, device: Any = "cpu") -> Any:
        if session.resolve(device) is not None:
            session.record.redirected("torch.Generator")
            device = session.target.device
        return _RealGenerator(device)

    return _GeneratorMeta("Generator", (_RealGenerator,), {"__new__": __new__, "__module__": "torch"})


def patches(session: Redirection) -> list[Patch]:
    return [Patch(torch, "Generator", _make_generator(session), "redirect torch.Generator(device=)")]
