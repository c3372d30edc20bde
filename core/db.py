"""Small pieces of hand-written SQL for the hot paths (matching, dispatch) that the ORM's
query building made several times slower than the indexed reads themselves.

Values are always parameters; only names from the models' metadata and counts of
placeholders are formatted into statements.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

Converter = Callable[[Any, Any, Any], Any]


def one_of(column: str, values: Sequence[int]) -> tuple[str, list[Any]]:
    """``column`` (an integer column) equal to one of ``values``: the SQL and its
    parameters.

    On PostgreSQL the values go as one parameter, the text of a bigint array, so the
    statement is the same whatever their count: psycopg caches the conversion of a
    statement only up to 50 parameters, and a search ring holds up to a few hundred
    cells (splitting such a statement cost more than running it, and dumping a Python
    list as an array checks every element for quoting). SQLite has no arrays: a
    placeholder a value.
    """
    numbers = [int(v) for v in values]  # only integers reach the array's text
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [_bigint_array(numbers)]
    return f"{column} IN ({', '.join(['%s'] * len(numbers))})", numbers


def int_rows(
    alias: str, names: Sequence[str], rows: Sequence[Sequence[int]]
) -> tuple[str, list[Any]]:
    """A relation ``alias`` with integer columns ``names`` holding ``rows``, for a FROM
    clause: the SQL and its parameters. A statement can then join thousands of values
    it was given, and its size does not grow with them.

    PostgreSQL unnests one bigint array a column, each sent as its text; SQLite reads
    one JSON array of rows with ``json_each``. Only integers reach either text.
    """
    if not all(name.isidentifier() for name in (alias, *names)):
        raise ValueError("the relation and its columns are named by plain identifiers")
    width = len(names)
    numbers = [[int(v) for v in row] for row in rows]
    if any(len(row) != width for row in numbers):
        raise ValueError(f"every row needs {width} values")
    if connection.vendor == "postgresql":
        arrays = ", ".join(["%s::bigint[]"] * width)
        params: list[Any] = [_bigint_array([row[i] for row in numbers]) for i in range(width)]
        return f"unnest({arrays}) AS {alias}({', '.join(names)})", params
    picks = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
    rows_json = "[" + ",".join("[" + ",".join(map(str, row)) + "]" for row in numbers) + "]"
    # nosemgrep: django-raw-sql-formatted - identifiers checked above; values are a parameter
    return f"(SELECT {picks} FROM json_each(%s)) AS {alias}", [rows_json]  # noqa: S608  # nosec B608


def _bigint_array(numbers: Sequence[int]) -> str:
    """The text of a PostgreSQL bigint array, sent as one parameter: a Python list is
    dumped element by element, checking each for quoting."""
    return "{" + ",".join(map(str, numbers)) + "}"


def by_pk(model: type[Model], pks: Sequence[int]) -> dict[int, Any]:
    """The rows with these primary keys, as whole model instances loaded as the ORM
    loads them (every field's converters, decryption included): ``in_bulk`` without
    building its query on every call. Missing keys are absent from the answer."""
    if not pks:
        return {}
    columns, converters = _loading(model, connection.vendor)
    clause, params = one_of(connection.ops.quote_name(model._meta.pk.column), pks)
    table = connection.ops.quote_name(model._meta.db_table)
    # nosemgrep: django-raw-sql-formatted - names from the model's metadata; values are parameters
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {clause}"  # noqa: S608  # nosec B608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {
        instance.pk: instance for instance in (from_row(model, converters, row) for row in rows)
    }


def from_row(
    model: type[Model], converters: Sequence[tuple[Sequence[Converter], Any]], row: Sequence[Any]
) -> Any:
    """A model instance from a row of every concrete column, in field order."""
    values = []
    for raw, (funcs, expression) in zip(row, converters, strict=True):
        value = raw
        for convert in funcs:
            value = convert(value, expression, connection)
        values.append(value)
    # Every concrete field is present, so from_db does not look at the names.
    return model.from_db(connection.alias, (), values)


@functools.cache
def _loading(
    model: type[Model], vendor: str
) -> tuple[list[str], list[tuple[list[Converter], Any]]]:
    """The quoted columns and, for each, the converters the ORM's compiler would apply
    (the backend's, then the field's own ``from_db_value``), per model and backend."""
    del vendor  # part of the cache key: tests switch backends, the process rarely does
    quote = connection.ops.quote_name
    columns, converters = [], []
    for field in model._meta.concrete_fields:
        columns.append(quote(field.column))
        expression = field.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        )
        converters.append((funcs, expression))
    return columns, converters
