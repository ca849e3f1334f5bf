"""What one bulk item's answer means for the pipeline.

- indexed: written (or a delete of a document that was never there);
- stale: 409, the index already has this version or a newer one: counted, skipped, never retried;
- transient: the cluster could not take it now (429, 502-504, timeouts): retry with backoff;
- permanent: retrying cannot help (mapping rejection, too large): dead letter.
"""

from __future__ import annotations

import enum

from .engines import BulkItemResult
from .models import DeadLetter

TRANSIENT_STATUSES = {429, 500, 502, 503, 504}
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
    TRANSIENT = "transient"
    PERMANENT = "permanent"


def classify(item: BulkItemResult) -> Outcome:
    if item.ok:
        return Outcome.INDEXED
    if item.status == 409:
        return Outcome.STALE
    if item.status is None or item.status in TRANSIENT_STATUSES:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def dead_letter_reason(item: BulkItemResult) -> DeadLetter.Reason:
    if item.status == 413:
        return DeadLetter.Reason.TOO_LARGE
    if item.error_type in MAPPING_ERRORS or item.status == 400:
        return DeadLetter.Reason.MAPPING_REJECTED
    return DeadLetter.Reason.REJECTED
