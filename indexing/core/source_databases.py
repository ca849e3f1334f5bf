"""Source databases: where the rows searchsync indexes live, apart from searchsync's own tables.

searchsync's tables (blueprints, backfills, dead letters, audit, users) are in the ``default``
database. The rows it indexes may live in other PostgreSQL databases, written by applications in
any language, each with an optional replica that backfills and reconciliation read. They are
Django database aliases, declared from the environment::

    SEARCHSYNC_SOURCES="shop=postgres://app@db1/shop crm=postgres://app@db2/crm"
    SEARCHSYNC_SOURCE_SHOP_REPLICA=postgres://app@db1-replica/shop

A source ``shop`` is the alias ``source_shop`` (its replica ``source_shop_replica``, or the
primary when none is declared). The source named ``default`` is searchsync's own database with
its ``replica`` alias: the demo keeps everything in one PostgreSQL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

DEFAULT = "default"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class SourceDatabase:
    name: str
    url: str | None  # None: searchsync's own database
    replica_url: str | None = None

    @property
    def alias(self) -> str:
        return DEFAULT if self.name == DEFAULT else f"source_{self.name}"

    @property
    def replica_alias(self) -> str:
        if self.name == DEFAULT:
            from indexing.conf import searchsync_settings

            return searchsync_settings.REPLICA_ALIAS
        return f"{self.alias}_replica" if self.replica_url else self.alias


def parse(environ: Mapping[str, str] | None = None) -> dict[str, SourceDatabase]:
    """The declared source databases, ``default`` first. A malformed declaration fails at start."""
    environ = os.environ if environ is None else environ
    sources = {DEFAULT: SourceDatabase(DEFAULT, None)}
    for item in environ.get("SEARCHSYNC_SOURCES", "").split():
        name, sep, url = item.partition("=")
        if not sep or not url or not NAME.match(name):
            raise ValueError(f"SEARCHSYNC_SOURCES: {item!r} is not name=postgres://... (name: a-z, 0-9, _)")
        if name in sources:
            raise ValueError(f"SEARCHSYNC_SOURCES: {name!r} is declared twice (or is the reserved 'default')")
        sources[name] = SourceDatabase(name, url, environ.get(f"SEARCHSYNC_SOURCE_{name.upper()}_REPLICA") or None)
    return sources


def django_databases(sources: Mapping[str, SourceDatabase], parse_url) -> dict[str, dict]:
    """DATABASES entries for the declared sources (``parse_url``: dj_database_url.parse)."""
    databases = {}
    for source in sources.values():
        if source.url is None:
            continue
        databases[source.alias] = parse_url(source.url, conn_max_age=60, conn_health_checks=True)
        if source.replica_url:
            databases[source.replica_alias] = parse_url(source.replica_url, conn_max_age=60, conn_health_checks=True)
            databases[source.replica_alias]["TEST"] = {"MIRROR": source.alias}
    return databases


def declared() -> dict[str, SourceDatabase]:
    """The source databases of this process (config/settings.py parsed them into SEARCHSYNC_SOURCE_DATABASES)."""
    from django.conf import settings

    return getattr(settings, "SEARCHSYNC_SOURCE_DATABASES", None) or {DEFAULT: SourceDatabase(DEFAULT, None)}


def get(name: str) -> SourceDatabase:
    try:
        return declared()[name]
    except KeyError:
        raise LookupError(f"no source database {name!r}; declared: {sorted(declared())} "
                          "(SEARCHSYNC_SOURCES)") from None
