"""What the indexing consumer needs from Kafka, and the confluent-kafka adapter that provides it.

The consumer's settle / rewind / in-order-commit logic speaks only to ``Broker``, so it can run against
an in-memory broker in the unit tests; ``KafkaBroker`` is the one used in production and does exactly
what the consumer used to do with the client itself. Offsets travel as ``TopicPartition`` (a plain
value, usable without a broker); commit and seek failures are raised as ``KafkaException``.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition
from django.conf import settings

from indexing.blueprints.contracts import Incoming
from indexing.core.topics import wait_for_topic

log = logging.getLogger("indexing.pipeline.consumer")

PartitionsCallback = Callable[[list[TopicPartition]], None]


def consumer_config(group_id: str, **overrides) -> dict:
    config = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        "max.poll.interval.ms": 300_000,
        "enable.partition.eof": False,
    }
    config.update(overrides)
    return config


class Broker(Protocol):
    def wait_for_topic(self, topic: str, stop: threading.Event) -> bool:
        """Block until the topic exists (True) or ``stop`` is set (False)."""

    def subscribe(self, topic: str, *, on_assign: PartitionsCallback, on_revoke: PartitionsCallback,
                  on_lost: PartitionsCallback) -> None:
        """Join the group; the callbacks run inside ``consume_batch`` / ``poll`` calls."""

    def consume_batch(self, max_messages: int, timeout: float) -> list[Incoming]:
        """Up to ``max_messages``: wait up to ``timeout`` for the first, then take what is already fetched."""

    def poll(self, timeout: float) -> Incoming | None:
        """One message or None; called while partitions are paused, to keep the group membership."""

    def assignment(self) -> list[TopicPartition]: ...

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Commit these next offsets synchronously."""

    def seek(self, position: TopicPartition) -> None: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]: ...

    def watermarks(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        """(low, high) offsets of a partition."""

    def close(self) -> None: ...


class KafkaBroker:
    """``Broker`` over a confluent-kafka ``Consumer``."""

    def __init__(self, name: str, group_id: str, **config_overrides):
        self.name = name  # the blueprint's, for the log
        self.consumer = Consumer(consumer_config(group_id, **config_overrides))
        # The assignment as the rebalance callbacks left it (eager protocol: each gives the whole
        # set). Asking librdkafka for it on every commit cost a seventh of the consumer's CPU at
        # everyday rates; it changes only in those callbacks, on the consumer's own thread.
        self._assignment: list[TopicPartition] | None = None

    def wait_for_topic(self, topic: str, stop: threading.Event) -> bool:
        return wait_for_topic(topic, stop)

    def subscribe(self, topic, *, on_assign, on_revoke, on_lost) -> None:
        def assigned(_consumer, partitions):
            self._assignment = list(partitions)
            on_assign(partitions)

        def revoked(_consumer, partitions):
            self._assignment = []
            on_revoke(partitions)

        def lost(_consumer, partitions):
            self._assignment = []
            on_lost(partitions)

        self._assignment = []
        self.consumer.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def consume_batch(self, max_messages: int, timeout: float) -> list[Incoming]:
        # Wait up to ``timeout`` for the first message only, then take what is already fetched: a quiet
        # topic gets its event indexed at once, a busy one fills the batch while the previous bulk is in flight.
        messages = self.consumer.consume(num_messages=1, timeout=timeout)
        if messages and max_messages > 1:
            messages += self.consumer.consume(num_messages=max_messages - 1, timeout=0)
        batch = []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("%s: consumer error %s", self.name, err)
                continue
            batch.append(Incoming(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        return batch

    def poll(self, timeout: float) -> Incoming | None:
        msg = self.consumer.poll(timeout)
        if msg is None or msg.error() is not None:
            return None
        return Incoming(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value())

    def assignment(self) -> list[TopicPartition]:
        if self._assignment is None:  # not subscribed: ask librdkafka
            return self.consumer.assignment()
        return list(self._assignment)

    def commit(self, offsets: list[TopicPartition]) -> None:
        self.consumer.commit(offsets=offsets, asynchronous=False)

    def seek(self, position: TopicPartition) -> None:
        self.consumer.seek(position)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.consumer.pause(partitions)

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.consumer.resume(partitions)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return self.consumer.committed(partitions, timeout=timeout)

    def watermarks(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.consumer.get_watermark_offsets(partition, timeout=timeout)

    def close(self) -> None:
        self.consumer.close()
