"""Reconciliation: find where an index drifted from its source table and repair it through the pipeline.

Two passes, both in id-keyset chunks and paced by one rows/s throttle:

1. **Rows → documents.** Keyset pages of ``(id, version)`` from the replica
   alias; for each page one real-time ``_mget`` of the same ids. A row without
   a live document is **missing**; a row whose document has a lower version is
   **stale** (in a main index with a sidecar, only if its content differs from the
   document built from the row: the consumer leaves a main document alone when an
   event changed only sidecar fields, ``blueprints/main_content.py``).
2. **Documents → rows.** Every document of the index, paged with
   ``search_after`` on the ``id`` keyword with only ``deleted``/``updated_at``/
   ``tenant_id`` of ``_source``; the ids of each page are looked up in the
   replica in one query. A live document without a row is **orphaned**; a
   tombstone without a row older than the blueprint's retention is an
   **expired tombstone**.

Repairs never write documents directly: they are events in the outbox, so they
travel relay → Kafka → consumer and meet the same external-version rules as any
change. (A blueprint fed by a table's change stream is not reached by the outbox:
its repairs go through the same document writer as its backfills, at the rows'
change stamps, which its change events carry too.) A missing or stale row is
re-emitted as an upsert at the row's current
version (accepted because the index holds nothing or something older); an
orphan gets a delete at its document's version + 1, the smallest version that
beats what is there. Only the purge of expired tombstones writes to the index
itself: it is housekeeping of documents no event will ever concern again.

The replica may lag the primary, so every candidate is confirmed on the primary
before it counts: a row the replica has not seen yet is not an orphan, and a
row already updated on the primary is re-emitted at its newest version. A row
changed moments before it was checked may still count while its own event is in
flight; its repair is then a duplicate that the external version makes harmless.
"""

from indexing.reconciliation.compare import IndexDoc, classify_docs, classify_rows
from indexing.reconciliation.locks import is_running
from indexing.reconciliation.pacing import Pacer
from indexing.reconciliation.reconciler import Reconciler, ReconciliationError
from indexing.reconciliation.runs import create_report, reconcile, start, target_index
from indexing.reconciliation.tally import Tally

__all__ = ["IndexDoc", "Pacer", "Reconciler", "ReconciliationError", "Tally", "classify_docs", "classify_rows",
           "create_report", "is_running", "reconcile", "start", "target_index"]
