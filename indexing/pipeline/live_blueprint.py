"""The blueprint and write targets a batch is written with, read fresh for every batch in one query.

Every batch must see the write targets as they are now: an index being built is written by every
live change from the moment it exists, or a change made after the backfill read its row would be
missing from it. An operator may also change the schema, builder or delete mode while the
consumer runs. Re-reading the blueprint and its indices through the ORM for each batch cost most of
the consumer's CPU at everyday rates, where batches hold a few events. So each batch asks one
question — a digest of the blueprint row and of its write targets — and only a changed digest
reloads them.
"""

from __future__ import annotations

from django.db import connection

from indexing.models import IndexBlueprint, PhysicalIndex
from indexing.pipeline.writer import WriteTarget, write_targets

DIGEST_SQL = f"""
SELECT md5(b::text),
       (SELECT md5(coalesce(string_agg(i.id::text || ':' || i.name || ':' || i.state || ':' || md5(i.mappings::text)
                                       || ':' || md5(i.sidecar::text), ',' ORDER BY i.number), ''))
          FROM {PhysicalIndex._meta.db_table} i
         WHERE i.blueprint_id = b.id AND i.state IN ({", ".join(f"'{state}'" for state in PhysicalIndex.WRITE_STATES)}))
  FROM {IndexBlueprint._meta.db_table} b
 WHERE b.id = %s
"""


class LiveBlueprint:
    """``current()``: (blueprint, write targets) as the database holds them now."""

    def __init__(self, blueprint: IndexBlueprint):
        self.blueprint = blueprint
        self.targets: list[WriteTarget] = []
        self._digests: tuple | None = None

    def current(self) -> tuple[IndexBlueprint, list[WriteTarget]]:
        with connection.cursor() as cur:
            cur.execute(DIGEST_SQL, [self.blueprint.pk])
            row = cur.fetchone()
        if row is None:
            raise IndexBlueprint.DoesNotExist(f"blueprint {self.blueprint.name} was deleted")
        if row != self._digests:
            self.blueprint = IndexBlueprint.objects.get(pk=self.blueprint.pk)
            self.targets = write_targets(self.blueprint)
            self._digests = tuple(row)
        return self.blueprint, self.targets
