"""Copying between table rows, records and wire objects by field name.

A resource's row (SQLAlchemy), record (dataclass) and wire object (TypedDict or pydantic)
mostly share field names. ``copy_as`` copies the shared ones, so a resource spells out
only the fields that differ: renamed columns and computed values. What to copy is worked
out once per (target, source class, given names), not per call.

Contract for ``copy_as(target, source, **given)``:
- The result has ``target``'s fields in ``target``'s declaration order (for a wire
  object that order is the JSON order).
- A field named in ``given`` takes that value (``OMIT`` leaves it out: a wire object's
  optional key); otherwise it is read from ``source`` when ``source`` has that field.
- A record, row or pydantic model leaves the remaining fields to its defaults; a TypedDict
  has no defaults, so a field found nowhere is an error (a rename nobody spelled out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any, Final, TypeVar, cast

T = TypeVar("T")


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final[Any] = _Omit()


@cache
def field_names(cls: type) -> tuple[str, ...]:
    """The fields of a dataclass, pydantic model, SQLAlchemy mapped class or TypedDict."""
    if dataclasses.is_dataclass(cls):
        return tuple(field.name for field in dataclasses.fields(cls))
    if hasattr(cls, "model_fields"):
        return tuple(cls.model_fields)
    if hasattr(cls, "__mapper__"):
        return tuple(cls.__mapper__.column_attrs.keys())
    if _is_typeddict(cls):
        return tuple(cls.__annotations__)
    raise TypeError(f"{cls.__name__} has no fields copy_as knows how to read")


def _is_typeddict(cls: type) -> bool:
    return isinstance(getattr(cls, "__required_keys__", None), frozenset)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to build one ``target`` from one source class and one set of given names."""

    copied: tuple[str, ...]  # read from the source, in this order
    read: Callable[[object], tuple[Any, ...]]
    order: tuple[str, ...] | None  # a TypedDict's keys in declaration order; else None
    build: Callable[[dict[str, Any]], Any]  # keyword values → target (pydantic: validated)


def _reader(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    if not names:
        return lambda source: ()
    if len(names) == 1:
        getter = attrgetter(names[0])
        return lambda source: (getter(source),)
    return attrgetter(*names)


@cache
def _plan(target: type, source: type, given: tuple[str, ...]) -> _Plan:
    """Worked out once per call site: which fields come from where, and the errors."""
    names = field_names(target)
    unknown = set(given) - set(names)
    if unknown:
        raise TypeError(f"{target.__name__} has no field {', '.join(sorted(unknown))}")
    shared = set(field_names(source))
    copied = tuple(name for name in names if name in shared and name not in given)
    if not _is_typeddict(target):
        build = getattr(target, "model_validate", None) or (lambda values: target(**values))
        return _Plan(copied, _reader(copied), None, build)
    for name in names:
        if name not in shared and name not in given:
            raise KeyError(f"{target.__name__}.{name}: not on {source.__name__}, not given")
    return _Plan(copied, _reader(copied), names, dict)


def copy_as(target: type[T], source: object, /, **given: Any) -> T:
    """A ``target`` built from ``source``'s same-named fields and the ``given`` ones."""
    plan = _plan(target, type(source), tuple(given))
    values = dict(zip(plan.copied, plan.read(source), strict=True))
    values.update(given)
    if plan.order is not None:
        return cast(T, {name: values[name] for name in plan.order if values[name] is not OMIT})
    if any(value is OMIT for value in given.values()):
        values = {name: value for name, value in values.items() if value is not OMIT}
    return cast(T, plan.build(values))
