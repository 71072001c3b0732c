"""One undo stack for every change the library makes: attributes, items, environment variables, entered
contexts, and callbacks; undone last-first.

``Patcher`` is that stack.  Attribute patches are data (``Patch``, collected from the patch modules and
applied in order); the other kinds are made through its methods::

    patcher.apply(Patch(torch, "randn", fake_randn, "redirect device="))
    patcher.setitem(HANDLERS, func, handler, "route a patched method")  # a dict entry, a list element
    patcher.setenv("PYTORCH_ENABLE_MPS_FALLBACK", "1", "the MPS CPU fallback")  # None: unset it
    mode = patcher.enter(SimulatedMpsLimits(session), "simulate MPS limits")  # __exit__ on undo
    patcher.defer(forget_caches, "drop what dynamo learnt about the patches")  # called on undo
    patcher.undo_all()  # or undo_to(depth): pop back to an earlier ``depth``

Each change is undone exactly: an attribute or item that was absent is deleted again, an environment variable
that was unset is unset again.  If undoing one change raises, the rest are still undone and the first error
is raised after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping, MutableSequence
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


class ItemPatch:
    """Set ``mapping[key] = value`` (a dict entry, or an element of a list); data like ``Patch``."""

    __slots__ = ("key", "mapping", "value", "why")

    def __init__(self, mapping: MutableMapping[Any, Any] | MutableSequence[Any], key: Any, value: Any,
                 why: str) -> None:
        self.mapping = mapping
        self.key = key
        self.value = value
        self.why = why

    def __repr__(self) -> str:
        return f"ItemPatch([{self.key!r}], why={self.why!r})"


class Change:
    """One entry of the undo stack: what was done (``why``) and how to take it back; ``claim`` marks the
    attribute or item it holds (nothing else may change it meanwhile)."""

    __slots__ = ("claim", "undo", "why")

    def __init__(self, undo: Callable[[], None], why: str, claim: tuple[int, Any] | None = None) -> None:
        self.undo = undo
        self.why = why
        self.claim = claim


class AppliedPatch(Change):
    """An applied attribute patch and what ``vars(owner)`` held before (or ``MISSING``)."""

    __slots__ = ("original", "patch")

    def __init__(self, patch: Patch, original: Any, claim: tuple[int, Any] | None = None) -> None:
        super().__init__(self._restore, patch.why, claim)
        self.patch = patch
        self.original = original  # what vars(owner) held, or MISSING (the name came from a base class / nowhere)

    def _restore(self) -> None:
        owner, name = self.patch.owner, self.patch.name
        if self.original is MISSING:
            if name in vars(owner):
                delattr(owner, name)
        else:
            setattr(owner, name, self.original)


class Patcher:
    """The undo stack (see the module docstring); one attribute or item is changed at most once on it."""

    def __init__(self) -> None:
        self._stack: list[Change] = []
        self._keys: set[tuple[int, Any]] = set()

    @property
    def applied(self) -> tuple[AppliedPatch, ...]:
        """The attribute patches in effect, in the order they were applied."""
        return tuple(c for c in self._stack if isinstance(c, AppliedPatch))

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change in effect, in the order it was made."""
        return tuple(self._stack)

    @property
    def depth(self) -> int:
        """How many changes are in effect: ``undo_to(depth)`` takes back everything made after this."""
        return len(self._stack)

    def _claim(self, owner: Any, key: Any, what: str | Patch) -> tuple[int, Any]:
        claim = (id(owner), key)
        if claim in self._keys:  # (a Patch's qualname is only worked out for this message: ~300 per activation)
            raise ValueError(f"{what.qualname if isinstance(what, Patch) else what} is patched twice")
        return claim

    def apply(self, patch: Patch | ItemPatch) -> Any:
        """Apply an attribute or item patch; returns what was there before (or ``MISSING``)."""
        if isinstance(patch, ItemPatch):
            return self.setitem(patch.mapping, patch.key, patch.value, patch.why)
        claim = self._claim(patch.owner, patch.name, patch)
        original = vars(patch.owner).get(patch.name, MISSING)
        if original is MISSING and not isinstance(patch.owner, type) and hasattr(patch.owner, patch.name):
            original = getattr(patch.owner, patch.name)  # config-module style objects keep values elsewhere
        setattr(patch.owner, patch.name, patch.replacement)
        self._push(AppliedPatch(patch, original, claim))
        return original

    def setitem(self, mapping: MutableMapping[Any, Any] | MutableSequence[Any], key: Any, value: Any,
                why: str) -> Any:
        """``mapping[key] = value`` until undone (then the old value, or no entry); returns the old value."""
        claim = self._claim(mapping, key, f"item {key!r}")
        try:
            original = mapping[key]
        except (KeyError, IndexError):
            original = MISSING
        mapping[key] = value

        def restore() -> None:
            if original is MISSING:
                mapping.pop(key, None)  # type: ignore[call-arg]
            else:
                mapping[key] = original

        self._push(Change(restore, why, claim))
        return original

    def setenv(self, name: str, value: str | None, why: str) -> str | None:
        """Set (``None``: unset) environment variable ``name`` until undone; returns its old value."""
        claim = self._claim(os.environ, name, f"environment variable {name}")
        original = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

        def restore() -> None:
            if original is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = original

        self._push(Change(restore, why, claim))
        return original

    def enter(self, context: Any, why: str) -> Any:
        """Enter ``context`` (a context manager, a dispatch mode, an import hook) and exit it on undo."""
        result = context.__enter__()
        self._push(Change(lambda: context.__exit__(None, None, None), why))
        return result

    def defer(self, undo: Callable[[], None], why: str) -> None:
        """Call ``undo`` when the stack is unwound past this point."""
        self._push(Change(undo, why))

    def _push(self, change: Change) -> None:
        self._stack.append(change)
        if change.claim is not None:
            self._keys.add(change.claim)

    def undo_to(self, depth: int) -> None:
        """Undo the changes made after the stack had ``depth`` entries, last first."""
        error: BaseException | None = None
        while len(self._stack) > depth:
            change = self._stack.pop()
            if change.claim is not None:
                self._keys.discard(change.claim)
            try:
                change.undo()
            except BaseException as exc:  # the rest must still be undone
                error = error or exc
        if error is not None:
            raise error

    def undo_all(self) -> None:
        self.undo_to(0)
