"""One row type per table: a dataclass whose fields are the table's columns, in one order.

Every query of a table selects `spec.columns`, so a record becomes a row by position
(`Payment(*record)`), the cheapest conversion asyncpg allows. Field names are column names, but
for a trailing underscore where the column's name would shadow something (`metadata_`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import Table

R = TypeVar("R")


def column_name(field: str) -> str:
    return field[:-1] if field.endswith("_") else field


class RowSpec(Generic[R]):
    """A table and its row type, checked against each other when the module is imported."""

    def __init__(self, table: Table, row: type[R]):
        fields = [f.name for f in dataclasses.fields(row)]  # type: ignore[arg-type]
        names = [column_name(f) for f in fields]
        if set(names) != set(table.c.keys()) or len(names) != len(table.c):
            raise TypeError(f"{row.__name__} does not match the columns of {table.name}")
        self.table = table.name
        self.row = row
        self.fields: tuple[str, ...] = tuple(fields)
        # The SELECT list (or RETURNING list) in the row's field order.
        self.columns = ", ".join(names)
        self.column_of = dict(zip(fields, names, strict=True))

    def one(self, record: Any) -> R | None:
        return None if record is None else self.row(*record)

    def many(self, records: Iterable[Any]) -> list[R]:
        row = self.row
        return [row(*r) for r in records]

    def values(self, row: R) -> list[Any]:
        """The row's values in column order (for an INSERT of `columns`)."""
        return [getattr(row, f) for f in self.fields]

    def insert_sql(self, suffix: str = "") -> str:
        marks = ", ".join(f"${i}" for i in range(1, len(self.fields) + 1))
        return f"INSERT INTO {self.table} ({self.columns}) VALUES ({marks}) {suffix}".rstrip()  # noqa: S608
