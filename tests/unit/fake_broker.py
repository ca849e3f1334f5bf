"""An in-memory ``Broker`` and the collaborators an ``IndexingConsumer`` needs, so its commit rule runs without services.

``FakeBroker`` holds one topic's partitions (their messages), the group's committed offsets, this
consumer's positions and paused partitions; it records every commit, seek, pause and resume in
``events`` (shared with the fake processor, so a test reads one ordered history)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from indexing.blueprints.contracts import Incoming
from indexing.models import IndexBlueprint
from indexing.pipeline.consumer import ConsumerStopping, IndexingConsumer

TOPIC = "fake.product"


class FakeBroker:
    def __init__(self, partitions: dict[int, int], topic: str = TOPIC):
        """``partitions``: partition -> how many messages it holds (offsets 0..n-1)."""
        self.topic = topic
        self.log = {p: [Incoming(topic, p, o, f"k{p}-{o}".encode(), b"{}") for o in range(n)]
                    for p, n in partitions.items()}
        self.position = {p: 0 for p in partitions}
        self.committed_offsets: dict[int, int] = {}
        self.paused: set[int] = set()
        self.assigned: set[int] = set()
        self.events: list[tuple] = []
        self.polls_while_paused = 0
        self.closed = False
        self._lock = threading.Lock()

    def record(self, *event) -> None:
        with self._lock:
            self.events.append(event)

    # -- Broker ----------------------------------------------------------------
    def wait_for_topic(self, topic, stop) -> bool:
        return True

    def subscribe(self, topic, *, on_assign, on_revoke, on_lost) -> None:
        assert topic == self.topic
        self.assigned = set(self.log)
        on_assign([TopicPartition(topic, p) for p in sorted(self.assigned)])

    def _readable(self) -> list[int]:
        return [p for p in sorted(self.assigned)
                if p not in self.paused and self.position[p] < len(self.log[p])]

    def consume_batch(self, max_messages: int, timeout: float) -> list[Incoming]:
        batch: list[Incoming] = []
        # Round robin over the partitions, one message at a time, as a fetch over several would mix them.
        while len(batch) < max_messages and (readable := self._readable()):
            for p in readable:
                if len(batch) == max_messages:
                    break
                batch.append(self.log[p][self.position[p]])
                self.position[p] += 1
        if not batch:
            time.sleep(min(timeout, 0.01))
        else:
            self.record("consumed", [(m.partition, m.offset) for m in batch])
        return batch

    def poll(self, timeout: float) -> Incoming | None:
        if self.paused:
            self.polls_while_paused += 1
        readable = self._readable()
        if not readable:
            time.sleep(min(timeout, 0.01))
            return None
        p = readable[0]
        self.position[p] += 1
        return self.log[p][self.position[p] - 1]

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in sorted(self.assigned)]

    def commit(self, offsets: list[TopicPartition]) -> None:
        for tp in offsets:
            assert tp.partition in self.assigned
            self.committed_offsets[tp.partition] = tp.offset
        self.record("commit", [(tp.partition, tp.offset) for tp in offsets])

    def seek(self, position: TopicPartition) -> None:
        self.position[position.partition] = position.offset
        self.record("seek", position.partition, position.offset)

    def pause(self, partitions) -> None:
        self.paused.update(tp.partition for tp in partitions)
        self.record("pause", sorted(tp.partition for tp in partitions))

    def resume(self, partitions) -> None:
        self.paused.difference_update(tp.partition for tp in partitions)
        self.record("resume", sorted(tp.partition for tp in partitions))

    def committed(self, partitions, timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, -1001))
                for tp in partitions]

    def watermarks(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.log[partition.partition])

    def close(self) -> None:
        self.closed = True

    # -- for the tests -----------------------------------------------------------
    def commits(self) -> list[list[tuple[int, int]]]:
        return [e[1] for e in self.events if e[0] == "commit"]

    def all_committed(self) -> bool:
        return all(self.committed_offsets.get(p) == len(msgs) for p, msgs in self.log.items())


@dataclass
class Report:
    """What the fake processor's ``complete`` hands back; the backpressure fake reads nothing of it."""
    offsets: list[tuple[int, int]]
    rejected_429: int = 0


class FakeProcessor:
    """``prepare`` / ``complete`` / ``record`` of a ``BatchProcessor``, with the bulk's behaviour chosen by the test.

    ``bulk(batch, attempt)`` runs on the bulk thread: it may wait, raise (a failed bulk) or return."""

    def __init__(self, broker: FakeBroker, bulk=None):
        self.broker = broker
        self.bulk = bulk or (lambda batch, attempt: None)
        self.attempts: dict[tuple[int, int], int] = {}  # first (partition, offset) of a batch -> bulks tried
        self.prepared: list[list[tuple[int, int]]] = []
        self.recorded = 0
        self.record_calls: list[int] = []  # batches per call: figures of close batches go together
        self._lock = threading.Lock()

    def prepare(self, batch: list[Incoming]):
        offsets = [(m.partition, m.offset) for m in batch]
        self.prepared.append(offsets)
        return offsets

    def complete(self, offsets):
        with self._lock:
            attempt = self.attempts[offsets[0]] = self.attempts.get(offsets[0], 0) + 1
        try:
            self.bulk(offsets, attempt)
        except ConsumerStopping:
            self.broker.record("bulk stopped", offsets)
            raise
        except Exception:
            self.broker.record("bulk failed", offsets)
            raise
        self.broker.record("bulk done", offsets)
        return Report(offsets)

    def record(self, *reports) -> None:
        self.recorded += len(reports)
        self.record_calls.append(len(reports))

    def forget_main_writes(self) -> None:
        self.broker.record("main writes forgotten")


@dataclass
class _Reading:
    queue_ratio: float = 0.0
    reason: str = ""


@dataclass
class CalmBackpressure:
    """A cluster never under pressure: a fixed batch size and no pauses."""
    batch_size: int
    state: str = "ok"
    last_reading: _Reading = field(default_factory=_Reading)

    def reading_due(self) -> bool:
        return False  # nothing to read: the consumer never waits for its bulks to read it

    def pause_for(self):
        return None

    def on_batch_done(self, report) -> None:
        pass

    def on_throttled(self, rejected: int) -> None:
        pass

    def on_unavailable(self, error: str) -> None:
        pass


class Quiet:
    """The console's consumer states and pause marks, kept in memory instead of Redis."""

    def __init__(self):
        self.states = []

    def publish_state(self, name, consumer_id, **state):
        self.states.append(state)

    def clear_state(self, name, consumer_id):
        pass

    def mark(self, name, reason, now=None):
        return True

    def clear(self, name):
        return None


def blueprint() -> IndexBlueprint:
    """An unsaved blueprint: the consumer reads only its name, topic and group."""
    return IndexBlueprint(name="fake", aggregate_type="product", source_topic=TOPIC)


def make_consumer(broker: FakeBroker, processor: FakeProcessor, *, batch_size: int) -> IndexingConsumer:
    quiet = Quiet()
    return IndexingConsumer(blueprint(), engine=object(), batch_wait_ms=20, broker=broker, processor=processor,
                            backpressure=CalmBackpressure(batch_size), states=quiet, pause_marks=quiet)


def run_until(consumer: IndexingConsumer, done, timeout: float = 15.0, stop: threading.Event | None = None) -> None:
    """Run the consumer on a thread until ``done()``, then set ``stop`` and wait for the consumer to close."""
    stop = stop or threading.Event()
    failure: list[BaseException] = []

    def target():
        try:
            consumer.run(stop)
        except BaseException as exc:  # surfaced in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "the consumer did not stop"
    if failure:
        raise failure[0]
    assert done(), "the condition was not reached in time"
