"""Helpers for the hand-written statements of ``PostgresStorage``: the columns of a model in a
SELECT, and turning a joined row back into model instances with the ORM's own conversions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


class Shape:
    """The columns of one model in a hand-written SELECT (``alias."column", …``) and how to turn
    them back into an instance with the same conversions the ORM applies (decryption, JSON)."""

    def __init__(self, model: type[Model], alias: str, fields: Sequence[str] | None = None) -> None:
        self.model = model
        self.alias = alias
        meta = model._meta
        concrete = list(meta.concrete_fields)
        # In the model's own order: ``Model.from_db`` places a subset of values by that order.
        self.fields = sorted((meta.get_field(name) for name in fields), key=concrete.index) if fields else concrete
        self.attnames = [f.attname for f in self.fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in self.fields)
        self.width = len(self.fields)
        self._converters: list[tuple[int, list, Any]] | None = None

    def _conversions(self) -> list[tuple[int, list, Any]]:
        # The converters are the fields' own (and the backend's, none on PostgreSQL): the same for
        # every connection, so they are looked up once and called with the caller's connection.
        if self._converters is None:
            found = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.alias)
                funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if funcs:
                    found.append((index, funcs, col))
            self._converters = found
        return self._converters

    def build(self, values: Sequence[Any], conn: Any = None) -> Any:
        """The instance for ``values`` (this shape's slice of a row), or None for an outer join's
        empty side (no primary key)."""
        if values[0] is None:
            return None
        conn = conn or connections[DEFAULT_DB_ALIAS]
        values = list(values)
        for index, funcs, col in self._conversions():
            value = values[index]
            for func in funcs:
                value = func(value, col, conn)
            values[index] = value
        return self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, values)


def split(row: Sequence[Any], shapes: Iterable[Shape]) -> list[Any]:
    """Cut a joined row into instances, one per shape, in order; what follows is returned as is."""
    conn = connections[DEFAULT_DB_ALIAS]
    out: list[Any] = []
    at = 0
    for shape in shapes:
        out.append(shape.build(row[at : at + shape.width], conn))
        at += shape.width
    out.extend(row[at:])
    return out


def columns(shapes: Iterable[Shape]) -> str:
    return ", ".join(shape.sql for shape in shapes)


def fetch(sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple]:
    """Run one statement that returns rows (a SELECT, or a write with RETURNING) and fetch them."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def db_values(obj: Model, fields: Sequence[Any]) -> list[Any]:
    """``obj``'s values for ``fields`` as the database takes them (encrypted, JSON adapted), without
    ``pre_save``: values such as ``created_at`` are written as given."""
    conn = connections[DEFAULT_DB_ALIAS]
    return [field.get_db_prep_save(getattr(obj, field.attname), conn) for field in fields]


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
