"""A PostgreSQL database of a test's own, registered as a source database the way
SEARCHSYNC_SOURCES would declare it, and written with the psql client as an application in any
language would write it."""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager

import psycopg
from django.db import connections

from indexing.core.source_databases import SourceDatabase


def server_params(dbname: str) -> dict:
    s = connections.settings["default"]
    return {"host": s["HOST"] or "127.0.0.1", "port": s["PORT"] or 5432, "user": s["USER"],
            "password": s["PASSWORD"], "dbname": dbname}


def allow_alias_in_this_test(alias: str, allow: bool) -> None:
    """Let the running Django test case use a database alias registered after it started.

    A test case refuses connections to aliases outside its ``databases``, fixed when it was set up;
    the alias of a database this test creates cannot be in it. The refusal is a patched
    ``ensure_connection`` that closes over the test case class, whose set is widened here."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    patched = BaseDatabaseWrapper.ensure_connection
    cells = dict(zip(patched.__code__.co_freevars, patched.__closure__ or ()))
    if "cls" not in cells:
        return  # not inside a database test case
    case = cells["cls"].cell_contents
    case.databases = frozenset(case.databases | {alias}) if allow else frozenset(case.databases - {alias})


@contextmanager
def source_database(unique: str):
    """A fresh PostgreSQL database on the same server, registered as the Django alias of a source
    ``t<unique>`` (as SEARCHSYNC_SOURCES would declare it), dropped afterwards."""
    name = f"t{unique}"
    source = SourceDatabase(name, url=f"postgres://.../{name}")
    dbname = f"{connections.settings['default']['NAME']}_src_{unique}"
    with psycopg.connect(**server_params(connections.settings["default"]["NAME"]), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    connections.settings[source.alias] = {**connections.settings["default"], "NAME": dbname, "TEST": {}}
    allow_alias_in_this_test(source.alias, True)
    try:
        yield source, dbname
    finally:
        allow_alias_in_this_test(source.alias, False)
        connections[source.alias].close()
        del connections[source.alias]
        del connections.settings[source.alias]
        drop_database(dbname)


def drop_database(dbname: str, attempts: int = 40) -> None:
    """DROP ... WITH (FORCE) cannot end an autovacuum worker (a superuser's backend) that happens to be
    in the new database: it refuses, and the worker leaves within moments, so try again."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(**server_params(connections.settings["default"]["NAME"]), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)


def psql(dbname: str, script: str) -> subprocess.CompletedProcess:
    """Run a script with the psql client, as an application in another language would write."""
    p = server_params(dbname)
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(p["host"]), "-p", str(p["port"]), "-U", p["user"],
         "-d", dbname],
        input=script, text=True, capture_output=True, timeout=60, env={**os.environ, "PGPASSWORD": p["password"]})


