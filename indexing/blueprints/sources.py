"""Sources: where a blueprint's documents come from when read from the database
(backfills, reconciliation), as opposed to arriving as events.

The app that owns the data registers its model with a function turning a row
into the same ``Event`` the live stream carries, so a backfilled document is
built by exactly the same builder, with the row's current version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from django.db import models

from indexing.blueprints.contracts import Event


@dataclass(frozen=True)
class Source:
    name: str
    model: type[models.Model]
    to_event: Callable[[models.Model], Event]
    tenant_field: str = "tenant_id"
    updated_field: str = "updated_at"
    # Rows read together → their events, in one statement (one snapshot): sources whose documents
    # join other rows need it, so the fields and the version come from the same state.
    to_events: Callable[[Sequence[models.Model]], list[Event]] | None = None
    depends_on: tuple = ()  # indexing.blueprints.dependencies.Dependency, set by register_blueprint
    # Document fields built from joined rows: reconciliation compares them with the source too.
    joined_fields: tuple[str, ...] = ()
    # The row's column that is its document's version (reconciliation and cutover guards read it).
    version_field: str = "version"
    # A column the database stamps from one increasing sequence on every write of the row (insert,
    # update, in the writing transaction, after the row lock). A blueprint fed by the table's own
    # change events takes its versions from it, so a row read can carry the same version: such a
    # blueprint can be backfilled, reconciled and cut over (see debezium.py). None: versions of
    # table changes are WAL positions, which only the connector's snapshot can reproduce.
    stamp_field: str | None = None
    # Primary keys read on a database alias → their events, without model instances (backfill pages).
    ids_to_events: Callable[[Sequence, str], list[Event]] | None = None
    # The database aliases its rows are read on: the source database's primary (confirmations,
    # repairs) and its replica (backfills, reconciliation, guards); None: searchsync's replica alias.
    database: str = "default"
    replica: str | None = None
    # A table change's row as Debezium's JSON converter encodes it → the same columns as a row read
    # gives them (dates, timestamps), so a streamed document equals a backfilled one; None: as is.
    change_row: Callable[[dict], dict] | None = None

    @property
    def replica_alias(self) -> str:
        if self.replica:
            return self.replica
        from indexing.conf import searchsync_settings

        return searchsync_settings.REPLICA_ALIAS

    def events(self, rows) -> list[Event]:
        rows = list(rows)
        if self.to_events is not None:
            return self.to_events(rows)
        return [self.to_event(row) for row in rows]

    def events_for_ids(self, ids: Sequence, using: str = "default") -> list[Event]:
        """Events of the rows ``ids`` as the database ``using`` holds them now, in id order."""
        if self.ids_to_events is not None:
            return self.ids_to_events(ids, using)
        return self.events(self.model.objects.using(using).filter(pk__in=ids).order_by("pk"))


_SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    _SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    try:
        return _SOURCES[name]
    except KeyError:
        raise LookupError(f"no source registered as {name!r}; known: {sorted(_SOURCES)}") from None

