"""A table's change events read back as rows: the values a row read of the same row gives.

Debezium's JSON converter (``time.precision.mode=adaptive_time_microseconds``,
``decimal.handling.mode=double``) writes dates as days, timestamps without zone as epoch milli- or
microseconds, ``timestamptz`` as ISO text with ``Z`` and times as microseconds of the day. A
blueprint fed by table changes builds its documents from those rows, and a backfill or a
reconciliation builds them from row reads: undone here, both give the same document.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _from_days(value):
    return (EPOCH + timedelta(days=value)).date().isoformat() if _is_int(value) else value


def _from_epoch(unit: int):
    """A ``timestamp`` (no zone) in epoch milli- or microseconds → its ISO text, as a row read gives it."""
    def convert(value):
        if not _is_int(value):
            return value
        return (EPOCH + timedelta(microseconds=value * unit)).replace(tzinfo=None).isoformat()
    return convert


def _zoned(value):
    """A ``timestamptz`` as Debezium writes it (ISO, ``Z``) → ISO in UTC with ``+00:00``, as a row read."""
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
    except ValueError:
        return value


def _from_micros_of_day(value):
    if not _is_int(value):
        return value
    return (datetime.min + timedelta(microseconds=value)).time().isoformat()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _column_reader(pg_type: str):
    """How Debezium's JSON converter (time.precision.mode=adaptive_time_microseconds,
    decimal.handling.mode=double) encodes a column of ``pg_type``, undone; None: the same value."""
    base = pg_type.split("(")[0].strip()
    precision = pg_type[pg_type.find("(") + 1:pg_type.find(")")] if "(" in pg_type else "6"
    if base == "date":
        return _from_days
    if base == "timestamp without time zone" or pg_type.startswith("timestamp(") and "without" in pg_type:
        return _from_epoch(1000 if precision.isdigit() and int(precision) <= 3 else 1)
    if base.startswith("timestamp") and "with time zone" in pg_type:
        return _zoned
    if base.startswith("time") and "without time zone" in pg_type or base == "time":
        return _from_micros_of_day
    return None


def change_row_reader(found: dict[str, str]):
    """A change event's row → the columns a row read gives (dates, timestamps and times differ)."""
    readers = {column: reader for column, pg_type in found.items() if (reader := _column_reader(pg_type))}

    def read(row: dict) -> dict:
        return {c: (readers[c](v) if c in readers and v is not None else v) for c, v in row.items()}

    return read
