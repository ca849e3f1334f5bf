"""Which aggregate types the blueprints declare, as the relay sees them.

An outbox row of an aggregate type no blueprint declares would be published to a topic no
consumer reads: lost in silence. The relay dead-letters it instead (``unknown_aggregate``, with
the bytes it would have sent), and a replay once a blueprint for it exists delivers it. A
disabled blueprint still declares its type: its events wait in Kafka until it is enabled.

The types are cached: re-read every ``BLUEPRINT_RELOAD_S`` (a deleted blueprint's type is
forgotten within that) and at once when a round holds a type the cache does not know, so a
blueprint created just before its first event is never missed. That costs one small query per
round only while unknown rows flow, and they leave the outbox in that round.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from indexing.conf import searchsync_settings
from indexing.models import DeadLetter, IndexBlueprint, OutboxEvent
from indexing.outbox.relay_dead_letters import Unpublishable, encode


class DeclaredAggregates:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._types: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def undeclared(self, aggregate_types: Iterable[str]) -> set[str]:
        """Those of ``aggregate_types`` no blueprint declares, enabled or not."""
        wanted = set(aggregate_types)
        now = self.clock()
        stale = self._read_at is None or now - self._read_at >= searchsync_settings.BLUEPRINT_RELOAD_S
        if stale or not wanted <= self._types:
            # Blueprints live in searchsync's own database, whichever database's outbox is relayed.
            self._types = frozenset(IndexBlueprint.objects.using("default").values_list("aggregate_type", flat=True))
            self._read_at = now
        return wanted - self._types


def unknown_aggregate(row: OutboxEvent, topic: str) -> Unpublishable:
    """The dead letter of a row no blueprint consumes, with the bytes the relay would have sent."""
    try:
        _, value = encode(row)
    except (TypeError, ValueError):
        value = None  # stored as the best readable rendering of the row instead
    return Unpublishable(row, topic, DeadLetter.Reason.UNKNOWN_AGGREGATE,
                         f"no blueprint declares aggregate type {row.aggregate_type!r}; "
                         f"replay this dead letter once one does", value)
