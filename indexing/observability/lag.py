"""Consumer lag per partition: the log end offset minus the group's committed offset."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from indexing.pipeline.consumer import consumer_config
from indexing.models import IndexBlueprint


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group never committed here
    end: int
    lag: int


def consumer_lag(blueprint: IndexBlueprint, timeout: float = 3.0) -> list[PartitionLag]:
    # A consumer that never subscribes: it can read the group's offsets without joining it.
    client = Consumer(consumer_config(blueprint.consumer_group))
    try:
        metadata = client.list_topics(blueprint.topic, timeout=timeout).topics.get(blueprint.topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = [TopicPartition(blueprint.topic, p) for p in sorted(metadata.partitions)]
        committed = client.committed(partitions, timeout=timeout)
        lags = []
        for tp in committed:
            low, high = client.get_watermark_offsets(TopicPartition(blueprint.topic, tp.partition), timeout=timeout)
            position = tp.offset if tp.offset >= 0 else None
            lags.append(PartitionLag(tp.partition, position, high, high - (position if position is not None else low)))
        return lags
    finally:
        client.close()
