"""Primitives every layer uses: Redis, backoff, limits, Kafka clients, counters, heartbeats."""
