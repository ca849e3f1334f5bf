"""The bulk sink: send versioned actions and resolve every one of them.

Retry rules, per item:
- stale (409) and indexed are final at once;
- permanent errors are final at once (the caller dead-letters them);
- 5xx item errors are retried a bounded number of times with exponential
  backoff and full jitter, then reported as ``retries_exhausted`` — so one bad
  document can never stall its partition;
- 429 is the cluster asking everyone to slow down, not a fault of the item:
  it is retried without using up the item's budget, and reported to the
  backpressure controller so the consumer shrinks batches and pauses;
- "not ready" (503, unavailable shards, no cluster manager: a node is away or
  a primary is moving to a replica) is not the item's fault either: retried
  like a 429, without budget, and reported as the cluster being unavailable;
- a request that got no answer at all (connection refused, timeout) means the
  cluster is unavailable: nothing is dead-lettered, the sink waits with capped
  backoff until the cluster answers again. The caller's ``wait`` keeps the
  Kafka consumer polling meanwhile, so it stays in its group.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from indexing.core.backoff import backoff_delay
from indexing.conf import searchsync_settings
from indexing.engines import BulkAction, BulkItemResult, SearchEngine
from indexing.models import DeadLetter
from indexing.pipeline.outcomes import Outcome, classify, dead_letter_reason


@dataclass
class Failure:
    action: BulkAction
    reason: DeadLetter.Reason
    error: str


@dataclass
class SinkResult:
    indexed: list[BulkAction] = field(default_factory=list)
    stale: list[BulkAction] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    retried: int = 0
    rejected_429: int = 0
    not_ready: int = 0  # item answers meaning "the cluster is not ready", each retried
    unavailable_waits: int = 0
    acked_at: float = 0.0  # wall-clock time the last item was resolved


class BulkSink:
    def __init__(self, engine: SearchEngine, *, max_retries: int, base_s: float, cap_s: float, chunk_size: int,
                 max_bytes: int | None = None, gate=None,
                 wait: Callable[[float], None] = time.sleep,
                 on_throttled: Callable[[int], None] | None = None,
                 on_unavailable: Callable[[str], None] | None = None,
                 on_not_ready: Callable[[int], None] | None = None,
                 on_available: Callable[[], None] | None = None):
        self.engine = engine
        self.max_retries = max_retries
        self.base_s = base_s
        self.cap_s = cap_s
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        # Held only while a request is on the wire (see ``SearchEngine.bulk``): writers on several
        # threads share one, so one resolves its answer while the next request is already sent.
        self.gate = gate
        self.wait = wait
        self.on_throttled = on_throttled or (lambda n: None)
        self.on_unavailable = on_unavailable or (lambda error: None)
        self.on_not_ready = on_not_ready or (lambda n: None)
        # called once a request is answered again after requests nobody answered
        self.on_available = on_available or (lambda: None)
        # since this sink was made: what its writes needed (a backfill worker's figures)
        self.totals: Counter = Counter()

    @classmethod
    def from_settings(cls, engine: SearchEngine, *, chunk_size: int | None = None, **callbacks) -> "BulkSink":
        """The retry and chunk settings every writer shares (consumer and backfills alike)."""
        cfg = searchsync_settings
        return cls(engine, max_retries=cfg.TRANSIENT_RETRIES, base_s=cfg.RETRY_BASE_MS / 1000,
                   cap_s=cfg.RETRY_MAX_MS / 1000, chunk_size=chunk_size or cfg.BATCH_SIZE,
                   max_bytes=cfg.BULK_MAX_BYTES, **callbacks)

    def write(self, actions: list[BulkAction], body: bytes | None = None) -> SinkResult:
        """``body``: the actions' bulk body built ahead, for the first attempt (retries build their own)."""
        result = SinkResult()
        pending = list(actions)
        attempts: dict[int, int] = {}  # id(action) -> item errors so far
        throttle_round = unavailable_round = not_ready_round = 0
        while pending:
            answers = self.engine.bulk(pending, chunk_size=self.chunk_size, body=body, max_bytes=self.max_bytes,
                                       gate=self.gate)
            body = None
            if answers and all(a.status is None for a in answers):
                result.unavailable_waits += 1
                self.on_unavailable(answers[0].reason or "no answer")
                self.wait(backoff_delay(unavailable_round, self.base_s, self.cap_s))
                unavailable_round += 1
                continue
            if unavailable_round:
                self.on_available()
            unavailable_round = 0
            retry: list[BulkAction] = []
            throttled = not_ready = 0
            for answer in answers:
                outcome = classify(answer)
                if outcome is Outcome.INDEXED:
                    result.indexed.append(answer.action)
                elif outcome is Outcome.STALE:
                    result.stale.append(answer.action)
                elif outcome is Outcome.PERMANENT:
                    result.failed.append(Failure(answer.action, dead_letter_reason(answer), _describe(answer)))
                elif answer.status == 429:
                    throttled += 1
                    retry.append(answer.action)
                elif outcome is Outcome.NOT_READY:
                    not_ready += 1
                    retry.append(answer.action)
                else:
                    n = attempts.get(id(answer.action), 0) + 1
                    attempts[id(answer.action)] = n
                    if n > self.max_retries:
                        result.failed.append(Failure(answer.action, DeadLetter.Reason.RETRIES_EXHAUSTED, _describe(answer)))
                    else:
                        retry.append(answer.action)
            if retry:
                result.retried += len(retry)
                if throttled:
                    result.rejected_429 += throttled
                    self.on_throttled(throttled)
                if not_ready:
                    result.not_ready += not_ready
                    self.on_not_ready(not_ready)
                if throttled:
                    delay = backoff_delay(throttle_round, self.base_s, self.cap_s)
                    throttle_round += 1
                elif not_ready:
                    delay = backoff_delay(not_ready_round, self.base_s, self.cap_s)
                    not_ready_round += 1
                else:
                    delay = backoff_delay(max(attempts.get(id(a), 1) for a in retry) - 1, self.base_s, self.cap_s)
                self.wait(delay)
            pending = retry
        result.acked_at = time.time()
        self.totals.update(retried=result.retried, not_ready=result.not_ready, rejected_429=result.rejected_429,
                           unavailable_waits=result.unavailable_waits)
        return result


def _describe(answer: BulkItemResult) -> str:
    return f"HTTP {answer.status} {answer.error_type or ''}: {answer.reason or ''}".strip()
