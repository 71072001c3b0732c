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

from ..active_state import IN_COMPILED, LEDGER
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor, promote
from .compiling import COMPILER, dynamo_compiling
from .pinned import mark_pinned

_NAMESPACES = (torch, torch.fft, torch.nested, torch.sparse, torch.special, torch.linalg)
_NOT_FACTORIES = {"Generator"}  # a class, redirected on its own (see generator.py)


# Public functions whose aten schema takes ``device`` beyond _device_constructors() (torch 2.13): the
# ``*_like`` family, ``normal``, ``from_file``.  Scanning the schemas costs ~60 ms, so activation uses this
# list and a test compares it with ``schema_device_functions()``: a torch upgrade that adds one fails there.
SCHEMA_EXTRAS = (
    "empty_like", "full_like", "ones_like", "rand_like", "randint_like", "randn_like", "zeros_like",
    "normal", "from_file",
)
# Underscored factories that test suites call with a device: quantized tensors (PyTorch's own view and
# shape tests build them with device="cuda"; CUDA has quantized empty kernels).
PRIVATE_FACTORIES = ("_empty_affine_quantized", "_empty_per_channel_affine_quantized")


def schema_device_functions() -> set[str]:
    """Public ``torch.*`` names whose aten schema takes ``device`` (the ground truth; slow)."""
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
    for name in SCHEMA_EXTRAS + PRIVATE_FACTORIES:
        if hasattr(torch, name):
            found[(id(torch), name)] = (torch, name)
    return sorted(found.values(), key=lambda pair: (pair[0].__name__, pair[1]))


_DATA_INFERRED = {"tensor", "as_tensor", "asarray", "scalar_tensor", "full", "full_like", "arange", "range", "linspace"}


def _limited_call(session: Redirection, orig: Callable[..., Any], api: str, index: int, args: tuple,
                  kwargs: dict) -> Any:
    """A redirected factory call under MPS limits: float64/complex128 results follow ``Options.mps_float64``."""
    dtype = kwargs.get("dtype")
    if dtype is None and (api.rpartition(".")[2] in _DATA_INFERRED or torch.get_default_dtype() == torch.float64):
        kwargs["device"] = "cpu"  # the dtype is only known once the data is seen: build on the CPU first
        out = orig(*args, **kwargs)
        wanted = session.limit_dtype(out.dtype)
        if wanted is None:
            return out
        out = out.to(device=session.target.device, dtype=wanted)
    else:
        if dtype is not None:
            wanted = session.limit_dtype(dtype)
            if wanted is None:
                kwargs["device"] = "cpu"
                return orig(*args, **kwargs)
            kwargs["dtype"] = wanted
        out = orig(*args, **kwargs)
    if session.options.emulate_identity and type(out) is torch.Tensor:
        promote(out, session.slot_class(index, count=False))  # (the caller counted it)
    return out


def make_factory(session: Redirection, orig: Callable[..., Any], api: str) -> Callable[..., Any]:
    resolve = session.resolve
    target = session.target.device
    hit = session.record.redirected
    emulated = session.record.emulated
    identity = session.options.emulate_identity
    strip_pin = target.type != "cuda"
    plain = torch.Tensor
    limited = session.mps_limits
    drop_device = target.type == "cpu"
    modes = torch._C._len_torch_function_stack
    classes = [session.slot_class(i, count=False) for i in range(len(session.slots))]
    # the hot path (each line here was measured: a redirected call costs ~1 us over native torch.randn(64), a
    # Python wrapper's floor is ~0.5 us): the session's device cache read directly, counters as cells, the
    # compiling() test written out
    cache = session.device_cache
    sites = session.options.call_sites
    calls = session.record.cell("redirected", api)
    sources = [session.record.cell("source", src) for src, _ in session.slots]

    def pinned_call(args: tuple, dev: Any, kwargs: dict) -> Any:
        kwargs["pin_memory"] = False  # host memory is all there is: "pinned" is host memory reported pinned
        emulated(f"{api}(pin_memory=True)")
        out = factory(*args, device=dev, **kwargs)
        return out if isinstance(out, EmulatedTensor) else mark_pinned(out)

    # (torch's factories take ``device`` by keyword only: as a parameter of its own it costs nothing to find)
    def factory(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        if strip_pin and kwargs and kwargs.get("pin_memory"):
            return pinned_call(args, device, kwargs)
        if device is None:
            return orig(*args, **kwargs)
        try:
            index = cache[device]
        except (KeyError, TypeError):
            index = resolve(device)  # (raises invalid device ordinal)
        if index is None:
            return orig(*args, device=device, **kwargs)
        if index < 0:
            index = session.current_index  # a bare "cuda" (cached as CURRENT)
        if IN_COMPILED[0] or dynamo_compiling() or COMPILER._is_compiling_flag:  # compiling(), written out
            # traced: no class change, no record (dynamo refuses __class__)
            return orig(*args, device=target, **kwargs)
        if sites:
            hit(api)
        else:
            calls[0] += 1
        sources[index][0] += 1
        if limited:
            kwargs["device"] = target
            return _limited_call(session, orig, api, index, args, kwargs)
        # on a CPU target, leaving device= out is cheaper for torch than device="cpu" (unless a mode sets one)
        out = orig(*args, **kwargs) if drop_device and not modes() else orig(*args, device=target, **kwargs)
        if identity and type(out) is plain:
            if LEDGER[0] is not None:
                LEDGER[0].track(out, index)
            out.__class__ = classes[index]
        elif LEDGER[0] is not None and isinstance(out, plain):
            LEDGER[0].track(out, index)
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
