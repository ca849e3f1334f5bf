"""Timestamps read from PostgreSQL at psycopg's C speed.

Django loads every ``timestamptz`` through its own loader, a subclass of psycopg's pure-Python
one, only to put its time zone on the result. For a connection in UTC, psycopg's C loader already
returns datetimes in ``datetime.timezone.utc``: the same values, at a fraction of the cost. A
backfill page of 500 products spent 4 of its 10 us per row reading in Django's loader.

Installed on every new PostgreSQL connection whose time zone is UTC (Django's own with
``USE_TZ``), when psycopg's C implementation is there; any other set-up keeps Django's loader.
"""

from __future__ import annotations

import datetime
import functools


def use_c_timestamptz_loader(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: swap Django's timestamptz loader for psycopg's C one."""
    if connection.vendor != "postgresql" or connection.timezone is not datetime.timezone.utc:
        return
    loader = _c_loader()
    if loader is not None:
        connection.connection.adapters.register_loader("timestamptz", loader)


@functools.cache
def _c_loader():
    try:
        import psycopg
        from psycopg.adapt import Loader
        from psycopg.pq import Format
    except ImportError:  # psycopg2: Django's own path
        return None
    if psycopg.pq.__impl__ not in ("c", "binary"):
        return None
    oid = psycopg.adapters.types["timestamptz"].oid
    c_loader = psycopg.adapters.get_loader(oid, Format.TEXT)

    class UtcTimestamptzLoader(Loader):
        # Django compares a cursor's time zone with this before every cursor (``create_cursor``).
        timezone = datetime.timezone.utc

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            # The C loader's bound method itself: psycopg calls it without a Python frame between.
            self.load = c_loader(oid, context).load

        def load(self, data):  # replaced per instance above; declared for the abstract base
            raise NotImplementedError

    return UtcTimestamptzLoader
