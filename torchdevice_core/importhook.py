"""Run a callback right after a module is imported (for patches of modules that may load after activation).

The finder sits at the front of ``sys.meta_path`` only while a redirection is active, and only when some
watched module is not imported yet; it asks the other finders for the spec and wraps its loader, so the
module is loaded as it would have been.  Nothing is imported eagerly.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

Callback = Callable[[ModuleType], None]


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any, callback: Callback) -> None:
        self._inner = inner
        self._callback = callback

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        self._callback(module)


class PostImportHook(importlib.abc.MetaPathFinder):
    """``with PostImportHook({"pkg.mod": fn}):`` calls ``fn(module)`` once ``pkg.mod`` has executed."""

    def __init__(self, callbacks: dict[str, Callback]) -> None:
        self._callbacks = dict(callbacks)
        self._local = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        callback = self._callbacks.get(fullname)
        if callback is None or getattr(self._local, "busy", False):
            return None
        self._local.busy = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._local.busy = False
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, callback)
        return spec

    def __enter__(self) -> PostImportHook:
        if self._callbacks and self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc: object) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)
