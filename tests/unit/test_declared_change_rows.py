"""A declared table's change rows, as Debezium's JSON converter encodes them (adaptive microsecond
times, decimals as doubles), read back into the very values a row read gives: a streamed document
then equals a backfilled one."""

from datetime import date, datetime, time, timezone

from indexing.blueprints.change_rows import change_row_reader
from indexing.blueprints.relations import _plain

COLUMNS = {"id": "bigint", "placed_on": "date", "paid_at": "timestamp with time zone",
           "local_at": "timestamp without time zone", "coarse_at": "timestamp(3) without time zone",
           "opens": "time without time zone", "total": "numeric(12,2)", "status": "text", "tags": "text[]"}

# What a row read of the same row gives (relations._plain of psycopg's values, in a UTC session).
READ = {"id": 7, "placed_on": _plain(date(2026, 12, 6)),
        "paid_at": _plain(datetime(2026, 12, 6, 5, 21, 35, 123456, tzinfo=timezone.utc)),
        "local_at": _plain(datetime(2026, 12, 6, 5, 21, 35, 123456)),
        "coarse_at": _plain(datetime(2026, 12, 6, 5, 21, 35, 123000)),
        "opens": _plain(time(9, 30, 0, 250000)), "total": 12.5, "status": "paid", "tags": ["a", "b"]}

# The same row in a change event.
CHANGED = {"id": 7, "placed_on": 20793, "paid_at": "2026-12-06T05:21:35.123456Z",
           "local_at": 1796534495123456, "coarse_at": 1796534495123, "opens": 34_200_250_000,
           "total": 12.5, "status": "paid", "tags": ["a", "b"]}


def test_a_change_row_reads_back_as_the_row_read_gives_it():
    assert change_row_reader(COLUMNS)(CHANGED) == READ


def test_nulls_and_values_already_read_pass_through():
    read = change_row_reader(COLUMNS)
    assert read({"placed_on": None, "paid_at": None, "status": None}) == {"placed_on": None, "paid_at": None,
                                                                          "status": None}
    assert read({"paid_at": "2026-12-06T06:21:35.5+01:00"})["paid_at"] == "2026-12-06T05:21:35.500000+00:00"
