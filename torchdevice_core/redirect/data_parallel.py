"""``nn.DataParallel`` over one emulated GPU, as on a one-GPU machine; over several, refused.

torch's ``DataParallel`` asks torch internals which accelerator exists (none on a CPU box: it becomes a
pass-through with ``device_ids == []``), and its scatter/gather are C++ CUDA functions
(``torch._C._scatter`` / ``_gather``) that a CPU build lacks.  On a one-GPU machine it has
``device_ids == [0]``, moves the module to ``cuda:0``, checks the parameters are there, copies the inputs
there (``Scatter``), runs the module, and its backward gathers the input gradients back where the inputs were.

Here: a ``DataParallel`` of a module already on the emulated device (or built with ``device_ids``) is set up
as on that machine (``device_ids`` from the emulated ``device_count()``), and ``comm.scatter`` /
``comm.gather`` are done with ``Tensor.to`` onto the virtual devices.  A ``DataParallel`` of a module that is
still on the CPU (and no ``device_ids``) stays torch's pass-through, exactly as without the plugin: a test that
never asked for CUDA is not moved onto it.  Several emulated devices are refused (``UnemulatableError``): the
replicas run in threads, each on its device's current stream, and the emulated current device is one per
process, not per thread, so the result would say nothing about CUDA.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parallel import comm

from ..errors import UnemulatableError
from ..patching import Patch
from ..session import Redirection
from ..tensor import EmulatedTensor

_dp: Any = importlib.import_module("torch.nn.parallel.data_parallel")  # (the package's name is a function)
_building = threading.local()  # .on: inside a DataParallel.__init__ this module set up as on a GPU machine


def _on_device(module: torch.nn.Module) -> bool:
    for t in module.parameters():
        return isinstance(t, EmulatedTensor)
    return any(isinstance(t, EmulatedTensor) for t in module.buffers())


def _make_init(session: Redirection) -> Callable[..., Any]:
    orig = _dp.DataParallel.__init__

    def __init__(self: Any, module: torch.nn.Module, device_ids: Any = None, output_device: Any = None,
                 dim: int = 0) -> None:
        if not device_ids and not _on_device(module):
            return orig(self, module, device_ids, output_device, dim)
        _building.on = True
        try:
            orig(self, module, device_ids, output_device, dim)
        finally:
            _building.on = False
        if len(self.device_ids) > 1:
            session.record.refused("torch.nn.DataParallel")
            raise UnemulatableError(
                f"torch.nn.DataParallel over {len(self.device_ids)} devices", str(session.target.device),
                "its replicas run in threads on per-device streams; the emulated current device is one per "
                "process (one device works)",
            )
        session.record.emulated("torch.nn.DataParallel")

    __init__.__wrapped__ = orig  # type: ignore[attr-defined]
    return __init__


def _while_building(orig: Callable[..., Any], emulated: Callable[..., Any]) -> Callable[..., Any]:
    def lookup(*args: Any, **kwargs: Any) -> Any:
        if getattr(_building, "on", False):
            return emulated(*args, **kwargs)
        return orig(*args, **kwargs)

    lookup.__name__ = getattr(orig, "__name__", "lookup")
    lookup.__wrapped__ = orig  # type: ignore[attr-defined]
    return lookup


def _make_scatter(session: Redirection) -> Callable[..., Any]:
    source = "cuda"

    def scatter(tensor: torch.Tensor, devices: Any = None, chunk_sizes: Any = None, dim: int = 0,
                streams: Any = None, *, out: Any = None) -> tuple[torch.Tensor, ...]:
        if out is not None:
            sizes = [o.size(dim) for o in out]
            for o, chunk in zip(out, tensor.split(sizes, dim), strict=True):
                o.copy_(chunk)
            return tuple(out)
        indices = [torch._utils._get_device_index(d, True) for d in devices]
        chunks = tensor.chunk(len(indices), dim) if chunk_sizes is None else tensor.split(list(chunk_sizes), dim)
        return tuple(chunk.to(torch.device(source, i)) for chunk, i in zip(chunks, indices, strict=False))

    return scatter


def _make_gather(session: Redirection) -> Callable[..., Any]:
    source = "cuda"

    def gather(tensors: Any, dim: int = 0, destination: Any = None, *, out: Any = None) -> torch.Tensor:
        if out is not None:
            return torch.cat([t.to(out.device) for t in tensors], dim, out=out)
        if destination is None:
            where = torch.device(source, session.current_index)
        elif destination == -1 or destination == "cpu":
            where = torch.device("cpu")
        else:
            where = torch.device(source, torch._utils._get_device_index(destination, True))
        return torch.cat([t.to(where) for t in tensors], dim)

    return gather


def patches(session: Redirection) -> list[Patch]:
    if "cuda" not in session.sources or not session.options.emulate_identity:
        return []
    why = "DataParallel on one emulated GPU"
    count = session.options.device_count
    return [
        Patch(_dp.DataParallel, "__init__", _make_init(session), why),
        Patch(_dp, "_get_available_device_type",
              _while_building(_dp._get_available_device_type, lambda: "cuda"), why),
        Patch(_dp, "_get_all_device_indices",
              _while_building(_dp._get_all_device_indices, lambda: list(range(count))), why),
        Patch(_dp, "_get_devices_properties",
              _while_building(_dp._get_devices_properties,
                              lambda ids: [torch.cuda.get_device_properties(i) for i in ids]), why),
        Patch(comm, "scatter", _make_scatter(session), why),
        Patch(comm, "gather", _make_gather(session), why),
    ]
