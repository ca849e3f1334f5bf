"""Lists of integer keys bound as one PostgreSQL array literal.

Django binds parameters on the client (psycopg's ``ClientCursor``), and psycopg dumps a Python list
into an array one element at a time, in Python: 500 integer keys cost about 0.8 ms of CPU per
statement, against 0.2 ms for the same keys as one ``'{1,2,...}'`` string, which libpq quotes in C.
Backfill pages bind such a list in every statement they read.
"""

from __future__ import annotations

from typing import Iterable

# Django's internal types whose values are Python ints: their keys can go as a bigint[] literal.
INTEGER_TYPES = frozenset({"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                           "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
                           "PositiveSmallIntegerField"})


def int_array(values: Iterable) -> str:
    """``values`` as the text of a PostgreSQL array; bind it as ``= ANY(%s::bigint[])``. ``int()`` of
    each value both checks it and keeps the literal free of anything but digits and signs."""
    return "{" + ",".join([str(int(v)) for v in values]) + "}"


def is_integer_field(field) -> bool:
    return field.get_internal_type() in INTEGER_TYPES
