"""``copy_as``: same-named fields copied, the rest given, in the target's field order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pytest
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from portway.records import OMIT, copy_as, field_names


class _Base(DeclarativeBase):
    pass


class ThingRow(_Base):
    __tablename__ = "things"

    id: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(10))
    meta: Mapped[str] = mapped_column("metadata", String(10))


@dataclass(frozen=True, slots=True)
class Thing:
    id: str
    name: str
    metadata: str = ""
    extra: int = 7


class ThingObject(TypedDict):
    id: str
    object: str
    name: str
    metadata: str
    note: NotRequired[str]


class ThingModel(BaseModel):
    name: str
    id: str


def test_field_names_of_each_kind_of_class() -> None:
    assert field_names(Thing) == ("id", "name", "metadata", "extra")
    assert field_names(ThingRow) == ("id", "name", "meta")
    assert field_names(ThingObject) == ("id", "object", "name", "metadata", "note")
    assert field_names(ThingModel) == ("name", "id")


def test_row_to_record_to_row() -> None:
    row = ThingRow(id="t1", name="one", meta="m")
    record = copy_as(Thing, row, metadata=row.meta)
    assert record == Thing("t1", "one", "m", 7)
    back = copy_as(ThingRow, record, meta=record.metadata)
    assert (back.id, back.name, back.meta) == ("t1", "one", "m")


def test_wire_objects_keep_the_declared_order_and_omit_on_request() -> None:
    record = Thing("t1", "one", "m")
    rendered = copy_as(ThingObject, record, object="thing", note=OMIT)
    assert list(rendered) == ["id", "object", "name", "metadata"]
    assert copy_as(ThingModel, record) == ThingModel(name="one", id="t1")


def test_a_wire_field_found_nowhere_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"ThingObject\.object"):
        copy_as(ThingObject, Thing("t1", "one"), note=OMIT)
    with pytest.raises(TypeError, match="no field nmae"):
        copy_as(Thing, Thing("t1", "one"), nmae="typo")
