"""Factory functions (``torch.randn(..., device="cuda")``) and ``*_like`` with an explicit device.

The list is torch's own: ``torch.utils._device._device_constructors()`` plus every public function whose
schema has a ``device`` argument (``_jit_get_all_schemas``), so a torch upgrade that adds one is caught by
a test rather than silently left unredirected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._device import _device_constructors

from ..patching import Patch
from ..session import Redirection
from ..tensor import emulated_class, promote

_NAMESPACES = (torch, torch.fft, torch.nested, torch.sparse, torch.special, torch.linalg)
_NOT_FACTORIES = {"Generator"}  # a class, redirected on its own (see generator.py)


def schema_device_functions() -> set[str]:
    """Public ``torch.*`` names whose aten schema takes ``device``."""
    names = set()
    for schema in torch._C._jit_get_all_schemas():
        if schema.name.startswith("aten::") and any(a.name == "device" for a in schema.arguments):
            name = schema.name[len("aten::") :]
            if not name.startswith("_") and hasattr(torch, name):
                names.add(name)
    return names - _NOT_FACTORIES


def factory_targets() -> list[tuple[Any, str]]:
    """(owner module, attribute name) for every device-taking factory, each once."""
    found: dict[tuple[int, str], tuple[Any, str]] = {}
    wanted = {id(f) for f in _device_constructors()}
    for ns in _NAMESPACES:
        for name, obj in vars(ns).items():
            if id(obj) in wanted and not name.startswith("_"):
                found[(id(ns), name)] = (ns, name)
    for name in schema_device_functions():
        found[(id(torch), name)] = (torch, name)
    return sorted(found.values(), key=lambda pair: (pair[0].__name__, pair[1]))


def make_factory(session: Redirection, orig: Callable[..., Any], api: str) -> Callable[..., Any]:
    resolve = session.resolve
    target = session.target.device
    hit = session.record.redirected
    emulated = session.record.emulated
    identity = session.options.emulate_identity
    source = session.source
    strip_pin = target.type != "cuda"
    plain = torch.Tensor

    def factory(*args: Any, **kwargs: Any) -> Any:
        dev = kwargs.get("device")
        if dev is None:
            if strip_pin and kwargs.get("pin_memory"):
                kwargs["pin_memory"] = False  # host memory is all there is: "pinned" is plain host memory
                emulated(f"{api}(pin_memory=True)")
            return orig(*args, **kwargs)
        index = resolve(dev)
        if index is None:
            return orig(*args, **kwargs)
        kwargs["device"] = target
        hit(api)
        out = orig(*args, **kwargs)
        if identity and type(out) is plain:
            promote(out, emulated_class(source, index))
        return out

    factory.__name__ = getattr(orig, "__name__", api.rpartition(".")[2])
    factory.__qualname__ = factory.__name__
    factory.__doc__ = getattr(orig, "__doc__", None)
    factory.__wrapped__ = orig  # type: ignore[attr-defined]
    return factory


def patches(session: Redirection) -> list[Patch]:
    out = []
    for owner, name in factory_targets():
        api = f"{owner.__name__}.{name}"
        out.append(Patch(owner, name, make_factory(session, getattr(owner, name), api), "redirect device="))
    return out
