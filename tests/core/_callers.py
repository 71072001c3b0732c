"""Code that calls torch from a module of a chosen name: the library decides per caller who sees emulation."""

from __future__ import annotations

from typing import Any


def ask_from(module_name: str, source: str, function: str = "ask") -> Any:
    """``function`` defined by ``source`` as if it lived in the module ``module_name``."""
    namespace: dict[str, Any] = {"__name__": module_name}
    exec(compile(source, f"<{module_name}>", "exec"), namespace)
    return namespace[function]
