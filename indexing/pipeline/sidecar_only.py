"""Sidecar-only writes: an event that changes only sidecar fields does not rewrite the main index.

The sidecar pattern keeps fast-moving fields (price, stock) in a small index with a short
refresh so that a price change costs the cluster little. That saving is real only if the
main document (title, description, analysed text) is not reindexed for a price change too.

Who knows what an event changed? Not the event: the outbox contract carries the row's state,
and an application's claim "only the price changed" would be one more thing to get wrong in
every language. The consumer knows instead: per main index and entity it remembers the digest
of the main part it last wrote (or found unchanged), and skips the main write when the new
event's main part has the same digest. Content, not a claim, decides.

Why the main index stays correct (DESIGN invariant 3, per part):

- The main part's external version is the version of the event that last changed it (or of a
  backfill's newer write). Each part's writes are monotonic in version and carry that
  version's content, so every stale write still loses, on each part.
- The memory is only trusted for an event that is the next one of its entity in the stream:
  its version must be above the remembered one (a replay, or a reconciliation's re-emit at the
  row's version, is written in full), and it must be its entity's only event in the batch (an
  event superseded in the batch was never compared, so it may have changed the main part and
  changed it back while a backfill wrote between).
- A main write being sent forgets its entity until it is answered: the consumer prepares the
  next batch while a bulk is in flight, and that batch must not compare with older content.
- A main write answered stale (something newer is there) or dead-lettered forgets the entity;
  a rebalance forgets everything (another consumer may have written meanwhile). Forgetting
  costs one full write, never correctness.
- The freshness canary is always written in full: it measures each index's commit → searchable
  lag, so its version must reach the main index every round.
- The main document's ``version`` and ``updated_at`` are those of its last content change;
  reconciliation, the cutover guard and the inspector compare a main index's content, not
  only its version, when it holds an older version than the row (``blueprints.main_content``).

The memory is bounded (least recently written first out); ``SEARCHSYNC_SIDECAR_ONLY_MEMORY``
sets its size, 0 turns sidecar-only writes off.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from indexing.blueprints.sidecar import without_volatile
from indexing.conf import searchsync_settings
from indexing.engines import serialize_document


def main_digest(main: dict) -> bytes:
    """The digest of a main part's content: every field but those that change with every write."""
    return hashlib.blake2b(serialize_document(without_volatile(main)), digest_size=16).digest()


@dataclass(frozen=True)
class Written:
    version: int
    digest: bytes
    acked_at: float  # when the engine acknowledged that content (read-your-writes answers from it)


class MainWrites:
    """What the consumer last wrote to each main index, per entity: (version, digest, acked_at)."""

    def __init__(self, capacity: int | None = None):
        self.capacity = searchsync_settings.SIDECAR_ONLY_MEMORY if capacity is None else capacity
        self._entries: OrderedDict[tuple[str, str], Written] = OrderedDict()
        # Batches are prepared on the consumer's thread and answered on a bulk thread.
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def __len__(self) -> int:
        return len(self._entries)

    def unchanged(self, index: str, entity_id: str, version: int, digest: bytes) -> Written | None:
        """The remembered write if the event at ``version`` leaves the main part as it is, else None."""
        with self._lock:
            known = self._entries.get((index, entity_id))
        if known is None or version <= known.version or known.digest != digest:
            return None
        return known

    def remember(self, index: str, entity_id: str, version: int, digest: bytes, acked_at: float) -> None:
        if not self.enabled:
            return
        key = (index, entity_id)
        with self._lock:
            known = self._entries.get(key)
            if known is not None and known.version >= version:
                return  # bulks answered out of order: the newer write's content stays
            self._entries[key] = Written(version, digest, acked_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def forget(self, index: str, entity_id: str) -> None:
        with self._lock:
            self._entries.pop((index, entity_id), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
