"""Running a subsystem that cannot take the emulated subclass on the real tensors, outputs handed back emulated.

Some parts of torch read a tensor's device from Python and then act on it in C++ (fake tensors, export,
TorchScript's interpreter...): an emulated tensor would tell them ``cuda:0`` on a machine without CUDA, and
some of those C++ paths then ``terminate`` the process instead of raising.  While ``real_devices()`` is
entered, emulated tensors report the device they really live on and ops on them return plain results (the
mechanism ``torch.compile`` support uses, see ``compile.py``); afterwards ``adopt`` gives the fresh plain
results that live on the target the emulated class of the inputs, as the eager call on CUDA would return
CUDA tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map

from ..active_state import ACTIVE, IN_COMPILED
from ..tensor import EmulatedTensor, promote, real_device
from .compiling import compiling


def first_emulated(tree: Any, module: Any = None) -> type[EmulatedTensor] | None:
    """The emulated class of the first emulated tensor in ``tree`` or among ``module``'s parameters/buffers."""
    for leaf in tree_flatten(tree)[0]:
        if isinstance(leaf, EmulatedTensor):
            return leaf._td_tensor_class
    if isinstance(module, torch.nn.Module):
        for tensor in (*module.parameters(), *module.buffers()):
            if isinstance(tensor, EmulatedTensor):
                return tensor._td_tensor_class
    return None


@contextlib.contextmanager
def real_devices() -> Iterator[None]:
    """Emulated tensors are what they really are for the duration (nestable)."""
    IN_COMPILED[0] += 1
    try:
        yield
    finally:
        IN_COMPILED[0] -= 1


def adopt(out: Any, cls: type[EmulatedTensor], inputs: Any = ()) -> Any:
    """Give every plain tensor in ``out`` that lives on the target (and is not one of ``inputs``) ``cls``."""
    active = ACTIVE[0]
    if active is None:
        return out
    target = active.target.device
    seen = {id(leaf) for leaf in tree_flatten(inputs)[0]}

    def one(leaf: Any) -> Any:
        if type(leaf) is torch.Tensor and id(leaf) not in seen and real_device(leaf) == target:
            promote(leaf, cls)
        return leaf

    return tree_map(one, out)


def call_real(fn: Callable[..., Any], args: tuple, kwargs: dict, module: Any = None) -> Any:
    """``fn(*args, **kwargs)`` on the real tensors when any input is emulated; else exactly ``fn(...)``."""
    cls = first_emulated((args, kwargs), module)
    if cls is None or compiling():
        return fn(*args, **kwargs)
    with real_devices():
        out = fn(*args, **kwargs)
    return adopt(out, cls, (args, kwargs))
