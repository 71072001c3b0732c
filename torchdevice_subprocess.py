"""Imported at interpreter start by ``torchdevice_subprocess.pth`` (as coverage.py's hook is), only when the
plugin exported ``$TORCHDEVICE_SUBPROCESS``: subprocesses of a redirected test run (``python -c``,
``torch.multiprocessing`` spawn) activate the same redirection right after they import torch.

Nothing is imported eagerly: a finder waits for ``import torch`` and activates when torch has loaded, so a
subprocess that never uses torch pays nothing.  (PYTEST_DONT_REWRITE: pytest marks every module of a
plugin's distribution for assertion rewriting and warns when one was imported first, as this one is.)
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
from typing import Any

ENV = "TORCHDEVICE_SUBPROCESS"  # torchdevice_core.grammar.SUBPROCESS_ENV, spelt out: see _activate


def _activate() -> None:
    if "torchdevice_core" in sys.modules:
        # torch is being imported by the library itself: whoever imports it activates (the plugin).  This is
        # why the hook imports nothing of torchdevice_core, not even the torch-free grammar for ENV's name.
        return
    config = json.loads(os.environ[ENV])
    import torchdevice_core

    if torchdevice_core.active() is None:
        torchdevice_core.activate(config["target"], source=config.get("source", "cuda"), **config.get("options", {}))


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        _activate()


class _TorchImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if not os.environ.get(ENV):
        return
    if "torch" in sys.modules:
        _activate()
    elif not any(isinstance(f, _TorchImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchImportFinder())


install()
