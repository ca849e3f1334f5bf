"""Timestamps are read with psycopg's C loader on UTC connections: the same datetimes Django's loader
gives, time zone object included, on a real PostgreSQL."""

import datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader

pytestmark = pytest.mark.django_db

VALUES_SQL = """SELECT now(), '2026-01-01 10:00:00+05'::timestamptz, '1999-12-31 23:59:59.999999-03:30'::timestamptz,
                       '0001-01-01 00:00:00+00'::timestamptz, NULL::timestamptz"""


def test_connections_read_timestamps_with_the_c_loader_and_the_same_results():
    with connection.cursor() as cur:
        loader = cur.cursor.adapters.get_loader(cur.cursor.adapters.types["timestamptz"].oid, 0)
        assert loader.__name__ == "UtcTimestamptzLoader"
        cur.execute(VALUES_SQL)
        ours = cur.fetchone()
    with connection.cursor() as cur:
        register_tzloader(connection.timezone, cur.cursor)  # Django's own, on this cursor only
        cur.execute(VALUES_SQL.replace("now()", f"'{ours[0].isoformat()}'::timestamptz"))
        djangos = cur.fetchone()
    assert ours == djangos
    assert [v.tzinfo for v in ours[:4]] == [datetime.timezone.utc] * 4
    assert ours[1] == datetime.datetime(2026, 1, 1, 5, 0, tzinfo=datetime.timezone.utc)
    assert [v.isoformat() for v in ours[:4]] == [v.isoformat() for v in djangos[:4]]
