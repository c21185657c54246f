"""Copying between table rows, records and wire objects by field name.

A resource's row (SQLAlchemy), record (dataclass) and wire object (TypedDict or pydantic)
mostly share field names. ``copy_as`` copies the shared ones, so a resource spells out
only the fields that differ: renamed columns and computed values. Field names are read
once per class, not per call.

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
from functools import cache
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


@cache
def _plan(target: type, source: type) -> tuple[tuple[str, bool], ...]:
    """For each field of ``target``, in order: its name and whether ``source`` has it."""
    shared = set(field_names(source))
    return tuple((name, name in shared) for name in field_names(target))


def copy_as(target: type[T], source: object, /, **given: Any) -> T:
    """A ``target`` built from ``source``'s same-named fields and the ``given`` ones."""
    unknown = given.keys() - set(field_names(target))
    if unknown:
        raise TypeError(f"{target.__name__} has no field {', '.join(sorted(unknown))}")
    strict = _is_typeddict(target)
    values: dict[str, Any] = {}
    for name, shared in _plan(target, type(source)):
        if name in given:
            value = given[name]
            if value is not OMIT:
                values[name] = value
        elif shared:
            values[name] = getattr(source, name)
        elif strict:
            raise KeyError(f"{target.__name__}.{name}: not on {type(source).__name__}, not given")
    if strict:
        return cast(T, values)
    if hasattr(target, "model_validate"):
        return cast(T, target.model_validate(values))  # type: ignore[attr-defined]
    return target(**values)
