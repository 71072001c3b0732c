"""Sample data shared by the op and module runs: its tensors, a pristine copy, and the live entry points."""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch.utils import _pytree as pytree

from .compare import copy_layout


def tensors_of(obj: Any) -> list[torch.Tensor]:
    """The distinct tensors of a sample in pytree order."""
    seen: set[int] = set()
    out = []
    for leaf in pytree.tree_leaves(obj):
        if isinstance(leaf, torch.Tensor) and id(leaf) not in seen:
            seen.add(id(leaf))
            out.append(leaf)
    return out


def pristine(obj: Any) -> Any:
    """A copy of the sample data before anything ran on it (aliasing inside the sample preserved)."""
    memo: dict[int, torch.Tensor] = {}

    def one(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        got = memo.get(id(x))
        if got is None:
            got = copy_layout(x, False)
            if x.requires_grad:
                got.requires_grad_()
            memo[id(x)] = got
        return got

    return pytree.tree_map(one, obj)


_OWNERS = ("torch", "torch.Tensor", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.special",
           "torch.nn.init", "torch.sparse", "torch.masked", "torch.signal.windows", "torch.nested", "torch._refs")


class Resolver:
    """OpInfos hold the torch function objects of import time; user code looks ``torch.arange`` up when it
    calls it, and then gets the patched entry point.  Made before activation, this finds where each function
    lives so the emulated side can look it up again, as user code would."""

    def __init__(self) -> None:
        self.where: dict[int, tuple[Any, str]] = {}
        for owner_name in _OWNERS:
            head, _, tail = owner_name.partition(".")
            try:
                owner: Any = importlib.import_module(owner_name)
            except ImportError:
                owner = getattr(importlib.import_module(head), tail, None) if tail else None
            if owner is None:
                continue
            for name, value in list(vars(owner).items()):
                if callable(value):
                    self.where.setdefault(id(value), (owner, name))

    def live(self, fn: Any) -> Any:
        found = self.where.get(id(fn))
        return fn if found is None else getattr(found[0], found[1], fn)


_RESOLVER: list[Resolver] = []


def resolver() -> Resolver:
    if not _RESOLVER:
        _RESOLVER.append(Resolver())
    return _RESOLVER[0]
