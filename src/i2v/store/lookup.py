"""Lookup: a one-row SELECT compiled once and run straight on a pooled DBAPI connection.

Polling a prediction is the API's hottest path. For a primary-key read SQLAlchemy's
execution machinery (connection events, execution context, result metadata) costs about
ten times the query itself: ~75 µs against ~8 µs on SQLite. A Lookup keeps what SQLAlchemy
is for here (the statement, its dialect's SQL and each column's result processing) and
skips the rest; a lone SELECT needs no transaction of ours on either backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from i2v.store.database import outages_named


class Lookup:
    """`run(engine, params)` -> the first row as a dict of processed column values, or None.

    Parameters are passed to the driver as they are, so they must be values it takes
    without conversion (strings and numbers); a column type with a bind processor
    would be bypassed.
    """

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self._sql = str(compiled)
        self._positions = compiled.positiontup  # parameter names in order, if positional
        self._literals = dict(compiled.params)  # values bound in the statement itself
        self._dialect = dialect
        self._columns = list(statement.selected_columns)
        self._names = [str(c.key) for c in self._columns]
        # Some drivers' processors depend on the type code the server reports (PostgreSQL
        # numerics), so they are made from the first result's description, as SQLAlchemy does.
        self._processors: list[Callable[[Any], Any] | None] | None = None

    def run(self, engine: sa.Engine, params: Mapping[str, Any]) -> dict[str, Any] | None:
        values = {**self._literals, **params}
        args = tuple(values[n] for n in self._positions) if self._positions else values
        with outages_named(engine):
            row = self._fetch(engine, args)
        if row is None or self._processors is None:
            return None
        return {
            name: value if process is None else process(value)
            for name, process, value in zip(self._names, self._processors, row, strict=True)
        }

    def _fetch(self, engine: sa.Engine, args: Any) -> Any:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, args)
                row = cursor.fetchone()
                if self._processors is None:
                    self._processors = self._make_processors(cursor.description)
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls back whatever the driver began
        return row

    def _make_processors(self, description: Any) -> list[Callable[[Any], Any] | None]:
        return [
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, type_code)
            for column, (_name, type_code, *_rest) in zip(self._columns, description, strict=True)
        ]
