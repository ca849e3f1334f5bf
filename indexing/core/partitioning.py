"""Which partition of a topic an entity's events land in, computed the way the producers choose it.

Every publisher keys an event by its entity id and partitions by murmur2 of the key: the relay's
producer with librdkafka's ``murmur2_random`` partitioner (``producer.py``), Debezium and Kafka
Connect with the Java client's default partitioner. Both take the Java client's murmur2 of the key
bytes, masked to a positive int, modulo the partition count, so an entity's partition follows from
its id and the topic's partition count alone, without reading the topic.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: str | bytes, partitions: int) -> int:
    """The partition a keyed message goes to among ``partitions``."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
