"""Dataclass-like records that cost nothing to define.

``@dataclass`` writes and compiles ``__init__``/``__repr__``/``__eq__`` (and, frozen, ``__setattr__``/
``__hash__``) for every class when its module is imported: ~1 ms a class, measured, and the records on the
activation path (``Options``, ``Target``, ``DeviceProfile``, ...) made a quarter of ``import + activate``.
``Record`` gives them the same behaviour from methods written once: fields are the class's annotations in
order, a class attribute is the default, ``dataclasses.field(default_factory=..., compare=..., repr=...)``
works, ``__post_init__`` runs, instances are frozen unless the class says ``frozen=False``.  Type checkers
treat subclasses as dataclasses (``dataclass_transform``).  Not supported (none of ours needs them):
``init=False`` fields, ``InitVar``, ``kw_only``, ordering, ``dataclasses.fields()``/``replace()``.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import Any, ClassVar

from typing_extensions import dataclass_transform

__all__ = ["Record", "field"]


# Python 3.14 makes annotations lazy (PEP 649): a class body without ``from __future__ import annotations`` then
# has no ``__annotations__`` entry in its ``__dict__``; ``annotationlib`` computes them (as forward references
# where a name is not defined yet), the way ``dataclasses`` reads them there.  Looked up once: a failed import is
# not cached by Python, and every record class would search the path for it again.
try:
    _annotationlib: Any = importlib.import_module("annotationlib")
except ImportError:  # Python < 3.14: the class dict holds them
    _annotationlib = None


def own_annotations(cls: type) -> dict[str, Any]:
    """The annotations ``cls`` itself declares, in order, without evaluating them."""
    if _annotationlib is None:
        return dict(vars(cls).get("__annotations__", {}))
    return dict(_annotationlib.get_annotations(cls, format=_annotationlib.Format.FORWARDREF))


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record:
    """Base of a record class: ``class Point(Record): x: int; y: int = 0``."""

    _record_fields: ClassVar[tuple[str, ...]] = ()
    _record_compared: ClassVar[tuple[str, ...]] = ()
    _record_shown: ClassVar[tuple[str, ...]] = ()
    _record_required: ClassVar[frozenset[str]] = frozenset()
    _record_factories: ClassVar[dict[str, Any]] = {}
    _record_frozen: ClassVar[bool] = True

    def __init_subclass__(cls, frozen: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = list(cls._record_fields)
        compared, shown = set(cls._record_compared), set(cls._record_shown)
        required, factories = set(cls._record_required), dict(cls._record_factories)
        for name, annotation in own_annotations(cls).items():
            if "ClassVar" in str(annotation):
                continue
            if name not in names:
                names.append(name)
            value = vars(cls).get(name, MISSING)
            compare = show = True
            if isinstance(value, Field):
                compare, show = value.compare, value.repr
                if value.default_factory is not MISSING:
                    factories[name] = value.default_factory
                    delattr(cls, name)
                elif value.default is not MISSING:
                    setattr(cls, name, value.default)
                else:
                    delattr(cls, name)
                value = MISSING if name in factories or value.default is MISSING else value.default
            if value is MISSING and name not in factories:
                required.add(name)
            else:
                required.discard(name)
            (compared.add if compare else compared.discard)(name)
            (shown.add if show else shown.discard)(name)
        cls._record_fields = tuple(names)
        cls._record_compared = tuple(n for n in names if n in compared)
        cls._record_shown = tuple(n for n in names if n in shown)
        cls._record_required = frozenset(required)
        cls._record_factories = factories
        cls._record_frozen = frozen
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]  # (as a dataclass with eq and not frozen)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields = cls._record_fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} positional arguments but {len(args)} were given")
        values = dict(zip(fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            values[name] = value
        for name in fields:
            if name not in values:
                factory = cls._record_factories.get(name)
                if factory is not None:
                    values[name] = factory()
                elif name in cls._record_required:
                    raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
                else:
                    values[name] = getattr(cls, name)
        self.__dict__.update(values)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __setattr__(self, name: str, value: Any) -> None:
        if self._record_frozen:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._record_frozen:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def _compared(self) -> tuple[Any, ...]:
        return tuple(self.__dict__[n] for n in self._record_compared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._record_shown)
        return f"{type(self).__qualname__}({shown})"
