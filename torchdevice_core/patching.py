"""Reversible attribute patches: each one is data, applied in order and undone last-first."""

from __future__ import annotations

from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


class Patch:
    """Replace ``owner.name`` with ``replacement``; ``why`` says what the replacement is for (it feeds the report).

    (Plain classes here and below, not dataclasses: building a dataclass costs ~1 ms at import.)
    """

    __slots__ = ("name", "owner", "replacement", "why")

    def __init__(self, owner: Any, name: str, replacement: Any, why: str) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self.why = why

    def __repr__(self) -> str:
        return f"Patch({self.qualname}, why={self.why!r})"

    @property
    def qualname(self) -> str:
        owner = getattr(self.owner, "__qualname__", None) or getattr(self.owner, "__name__", repr(self.owner))
        module = getattr(self.owner, "__module__", None)
        if isinstance(self.owner, type) and module:
            owner = f"{module}.{owner}"
        return f"{owner}.{self.name}"


class AppliedPatch:
    __slots__ = ("original", "patch")

    def __init__(self, patch: Patch, original: Any) -> None:
        self.patch = patch
        self.original = original  # what vars(owner) held, or MISSING (the name came from a base class / nowhere)


class Patcher:
    """Applies patches and undoes them exactly: an attribute that was not in ``vars(owner)`` is deleted again."""

    def __init__(self) -> None:
        self._applied: list[AppliedPatch] = []
        self._keys: set[tuple[int, str]] = set()

    @property
    def applied(self) -> tuple[AppliedPatch, ...]:
        return tuple(self._applied)

    def apply(self, patch: Patch) -> Any:
        key = (id(patch.owner), patch.name)
        if key in self._keys:
            raise ValueError(f"{patch.qualname} is patched twice")
        original = vars(patch.owner).get(patch.name, MISSING)
        if original is MISSING and not isinstance(patch.owner, type) and hasattr(patch.owner, patch.name):
            original = getattr(patch.owner, patch.name)  # config-module style objects keep values elsewhere
        setattr(patch.owner, patch.name, patch.replacement)
        self._applied.append(AppliedPatch(patch, original))
        self._keys.add(key)
        return original

    def undo_all(self) -> None:
        while self._applied:
            record = self._applied.pop()
            owner, name = record.patch.owner, record.patch.name
            if record.original is MISSING:
                if name in vars(owner):
                    delattr(owner, name)
            else:
                setattr(owner, name, record.original)
        self._keys.clear()
