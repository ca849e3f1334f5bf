"""What one bulk item's answer means for the pipeline.

- indexed: written (or a delete of a document that was never there);
- stale: 409, the index already has this version or a newer one: counted, skipped, never retried;
- not ready: the cluster is missing a piece it needs for this item (its shard has no active
  primary, there is no elected cluster manager, a node in the write path left): 503 or one of
  ``NOT_READY_ERRORS`` whatever the status. Retried with backoff like a 429 and without using up
  the item's budget, because it says nothing about the item: a node that left for a minute must
  not turn into dead letters;
- transient: the cluster could not take it now (429, 500, 502, 504, timeouts): retry with backoff;
- permanent: retrying cannot help (mapping rejection, too large): dead letter.
"""

from __future__ import annotations

import enum

from indexing.engines import BulkItemResult
from indexing.models import DeadLetter

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
# Error types that mean "the cluster is not ready for this shard yet" (OpenSearch and Elasticsearch
# names; both renamed master to cluster manager in places). Most come with 503, some with 500.
NOT_READY_ERRORS = {
    "unavailable_shards_exception",
    "no_shard_available_action_exception",
    "primary_missing_action_exception",
    "shard_not_in_primary_mode_exception",
    "retry_on_primary_exception",
    "not_master_exception",
    "not_cluster_manager_exception",
    "master_not_discovered_exception",
    "cluster_manager_not_discovered_exception",
    "node_not_connected_exception",
    "node_disconnected_exception",
    "node_closed_exception",
    "connect_transport_exception",
    "send_request_transport_exception",
    "receive_timeout_transport_exception",
    "process_cluster_event_timeout_exception",
}
MAPPING_ERRORS = {
    "mapper_parsing_exception",
    "strict_dynamic_mapping_exception",
    "document_parsing_exception",
    "illegal_argument_exception",
    "mapper_exception",
}


class Outcome(enum.Enum):
    INDEXED = "indexed"
    STALE = "stale"
    NOT_READY = "not_ready"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


def classify(item: BulkItemResult) -> Outcome:
    if item.ok:
        return Outcome.INDEXED
    if item.status == 409:
        return Outcome.STALE
    if item.status == 503 or item.error_type in NOT_READY_ERRORS:
        return Outcome.NOT_READY
    if item.status is None or item.status in TRANSIENT_STATUSES:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def dead_letter_reason(item: BulkItemResult) -> DeadLetter.Reason:
    if item.status == 413:
        return DeadLetter.Reason.TOO_LARGE
    if item.error_type in MAPPING_ERRORS or item.status == 400:
        return DeadLetter.Reason.MAPPING_REJECTED
    return DeadLetter.Reason.REJECTED
