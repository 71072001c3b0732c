"""``Record`` behaves as the ``@dataclass`` it replaces: each case is compared with a real dataclass."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import pytest

from torchdevice_core.records import Record, field


class Point(Record):
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    note: Any = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "point"


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    note: Any = dataclasses.field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "point"


class Mutable(Record, frozen=False):
    counts: dict[str, int] = field(default_factory=dict)


@pytest.mark.parametrize(("args", "kwargs"), [((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": ["a"]}),
                                               ((1,), {"note": "n", "y": 5})])
def test_fields_defaults_and_repr_match_a_dataclass(args: tuple, kwargs: dict) -> None:
    ours, theirs = Point(*args, **kwargs), DataPoint(*args, **kwargs)
    assert (ours.x, ours.y, ours.tags, ours.note) == (theirs.x, theirs.y, theirs.tags, theirs.note)
    assert repr(ours) == repr(theirs).replace("DataPoint", "Point")
    assert Point._record_fields == tuple(f.name for f in dataclasses.fields(DataPoint))


def test_factories_make_a_new_value_each_time() -> None:
    a, b = Point(1), Point(1)
    assert a.tags == [] and a.tags is not b.tags
    assert "tags" not in vars(Point)  # (the Field object does not stay behind as a class attribute)


def test_equality_and_hash_follow_compare() -> None:
    assert Point(1, note="a") == Point(1, note="b")  # compare=False
    assert Point(1) != Point(2)
    assert Point(1) != DataPoint(1)
    assert Point(1, tags=()) == Point(1, tags=())  # type: ignore[arg-type]
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Mutable())  # an eq, non-frozen dataclass is unhashable too


def test_frozen_unless_asked() -> None:
    p = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.x  # type: ignore[misc]
    m = Mutable()
    m.counts = {"a": 1}
    assert m == Mutable({"a": 1})


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "missing required argument: 'x'"),
    ((1, 2, [], None, 5), {}, "takes 4 positional arguments but 5 were given"),
    ((1,), {"z": 1}, "unexpected keyword argument 'z'"),
    ((1,), {"x": 1}, "multiple values for argument 'x'"),
])
def test_bad_arguments_raise_type_error(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_post_init_runs_and_may_set_fields() -> None:
    class Clamped(Record):
        value: int = 0

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")
            object.__setattr__(self, "value", min(self.value, 10))

    assert Clamped(50).value == 10
    with pytest.raises(ValueError, match="negative"):
        Clamped(-1)


def test_subclass_adds_fields_after_the_base_ones() -> None:
    class Point3(Point):
        z: int = 0

    p = Point3(1, 2, [], None, 3)
    assert (p.x, p.y, p.z) == (1, 2, 3)
    assert Point3._record_fields == ("x", "y", "tags", "note", "z")


def test_pickle_and_copies_keep_fields_and_frozenness() -> None:
    import copy
    import pickle

    p = Point(1, 2, ["a"], note="n")
    for twin in (pickle.loads(pickle.dumps(p)), copy.deepcopy(p), copy.copy(p)):
        assert twin == p and twin.note == "n" and twin.tags == ["a"]
        with pytest.raises(dataclasses.FrozenInstanceError):
            twin.y = 3  # type: ignore[misc]


def test_fields_come_from_annotations_also_without_the_future_import() -> None:
    # (a module without ``from __future__ import annotations``: real objects as annotations, and on Python 3.14
    # no ``__annotations__`` in the class dict at all)
    namespace: dict[str, Any] = {}
    exec("from torchdevice_core.records import Record\nfrom typing import ClassVar\n"
         "class Plain(Record):\n    a: int\n    b: 'Undefined' = 2\n    c: ClassVar[int] = 0\n", namespace)
    plain = namespace["Plain"](1)
    assert (plain.a, plain.b) == (1, 2) and namespace["Plain"]._record_fields == ("a", "b")
