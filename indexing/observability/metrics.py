"""Prometheus metrics, collected at scrape time from the shared state.

Consumers and backfill workers run in other processes than the web server, so
instead of in-process counters the collector reads what they share: outcome
counters and bulk latency histograms in Redis, consumer lag from Kafka,
freshness samples, dead letters and backfills from Postgres.
"""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from indexing.observability import freshness
from indexing.core import liveness, stats
from indexing.models import DeadLetter, IndexBlueprint, OutboxEvent
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)

OUTCOMES = ("indexed", "stale", "retried", "not_ready", "dead_lettered", "superseded", "dropped_fields")


class SearchsyncCollector:
    def collect(self):
        blueprints = list(IndexBlueprint.objects.filter(enabled=True))
        yield from self._outcomes(blueprints)
        yield from self._bulk(blueprints)
        yield from self._consumers(blueprints)
        yield from self._liveness(blueprints)
        yield from self._lag(blueprints)
        yield from self._freshness(blueprints)
        yield from self._dead_letters()
        yield from self._outbox()
        yield from self._extra()

    def _outcomes(self, blueprints):
        family = CounterMetricFamily("searchsync_events", "Events resolved by the indexing consumer, by outcome.",
                                     labels=["blueprint", "outcome"])
        for bp in blueprints:
            counters = stats.counters(bp.name)
            for outcome in OUTCOMES:
                family.add_metric([bp.name, outcome], counters.get(outcome, 0))
        yield family

    def _bulk(self, blueprints):
        latency = HistogramMetricFamily("searchsync_bulk_duration_seconds", "Bulk write latency per batch.",
                                        labels=["blueprint"])
        docs = CounterMetricFamily("searchsync_bulk_documents", "Documents sent in bulk writes.", labels=["blueprint"])
        for bp in blueprints:
            h = stats.bulk_histogram(bp.name)
            buckets = [(str(bound), n) for bound, n in h["buckets"]] + [("+Inf", h["count"])]
            latency.add_metric([bp.name], buckets, h["sum"])
            docs.add_metric([bp.name], h["documents"])
        yield latency
        yield docs
        sidecar_only = CounterMetricFamily(
            "searchsync_sidecar_only_writes", "Events that changed only sidecar fields: the main document was "
            "not rewritten.", labels=["blueprint"])
        for bp in blueprints:
            sidecar_only.add_metric([bp.name], stats.counters(bp.name).get("main_unchanged", 0))
        yield sidecar_only

    def _consumers(self, blueprints):
        batch = GaugeMetricFamily("searchsync_consumer_batch_size", "Current batch size (shrinks under backpressure).",
                                  labels=["blueprint", "consumer"])
        paused = GaugeMetricFamily("searchsync_consumer_paused", "1 while a consumer is paused by backpressure.",
                                   labels=["blueprint", "consumer"])
        for bp in blueprints:
            for consumer_id, state in liveness.live_consumer_states(bp.name).items():
                batch.add_metric([bp.name, consumer_id], state.get("batch_size", 0))
                paused.add_metric([bp.name, consumer_id], 1 if state.get("state") in ("paused", "unavailable") else 0)
        yield batch
        yield paused

    def _liveness(self, blueprints):

        up = GaugeMetricFamily("searchsync_consumers_live",
                               "Consumers in the blueprint's Kafka group with a fresh heartbeat; 0 means nothing "
                               "indexes this blueprint.",
                               labels=["blueprint"])
        for bp in blueprints:
            up.add_metric([bp.name], liveness.live_consumers(bp.name))
        yield up
        if searchsync_settings.PUBLISHER == "relay":
            yield GaugeMetricFamily("searchsync_relays_live", "Outbox relays with a fresh heartbeat.",
                                    value=liveness.live_relays())
            rows = CounterMetricFamily("searchsync_relay_rows",
                                       "Outbox rows the relays published (relayed), failed to get acknowledged "
                                       "and retry (failed), or dead-lettered as unpublishable; up to each "
                                       "relay's last heartbeat.", labels=["outcome"])
            counts = liveness.relay_counters()
            for outcome in ("relayed", "failed", "dead_lettered"):
                rows.add_metric([outcome], counts.get(outcome, 0))
            yield rows
        failures = CounterMetricFamily("searchsync_pipeline_thread_failures",
                                       "Relay and consumer thread failures, across all worker processes.",
                                       labels=["thread"])
        restarts = CounterMetricFamily("searchsync_pipeline_thread_restarts",
                                       "Relay and consumer threads restarted by their supervisor.", labels=["thread"])
        for thread in liveness.supervised_threads():
            counts = liveness.failures(thread)
            failures.add_metric([thread], counts["failures"])
            restarts.add_metric([thread], counts["restarts"])
        yield failures
        yield restarts

    def _lag(self, blueprints):
        from indexing.observability.lag import consumer_lag

        family = GaugeMetricFamily("searchsync_consumer_lag", "Messages not yet committed, per partition.",
                                   labels=["blueprint", "topic", "partition"])
        for bp in blueprints:
            try:
                for p in consumer_lag(bp, timeout=2.0):
                    family.add_metric([bp.name, bp.topic, str(p.partition)], p.lag)
            except Exception as exc:  # a scrape must not fail because Kafka is down
                log.warning("metrics: consumer lag of %s unavailable: %s", bp.name, exc)
        yield family

    def _freshness(self, blueprints):
        family = GaugeMetricFamily("searchsync_freshness_seconds", "Commit-to-index lag over the last 5 minutes.",
                                   labels=["blueprint", "source", "quantile"])
        for bp in blueprints:
            for source in ("event", "canary", "sidecar"):  # sidecar: the sidecar index's canary, when there is one
                q = freshness.recent(bp.name, source, 300)
                if q is None:
                    continue
                for label, value in (("0.5", q.p50_ms), ("0.95", q.p95_ms), ("0.99", q.p99_ms), ("1", q.max_ms)):
                    family.add_metric([bp.name, source, label], value / 1000)
        yield family

    def _dead_letters(self):
        family = GaugeMetricFamily("searchsync_dead_letters_pending", "Dead letters waiting for replay or discard.",
                                   labels=["blueprint", "reason"])
        rows = (DeadLetter.objects.filter(status=DeadLetter.Status.PENDING)
                .values_list("blueprint__name", "reason").order_by())
        counts: dict = {}
        for name, reason in rows:
            counts[(name or "", reason)] = counts.get((name or "", reason), 0) + 1
        for (name, reason), n in counts.items():
            family.add_metric([name, reason], n)
        yield family

    def _outbox(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        agg = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("created_at"))
        yield GaugeMetricFamily("searchsync_outbox_unpublished", "Outbox rows not yet acknowledged by Kafka.",
                                value=agg["n"])
        age = (timezone.now() - agg["oldest"]).total_seconds() if agg["oldest"] else 0.0
        yield GaugeMetricFamily("searchsync_outbox_oldest_unpublished_seconds",
                                "Age of the oldest unpublished outbox row.", value=age)

    def _extra(self):
        """Hook for metrics of other modules (replication slots; backfills register theirs in their app config)."""
        for provider in EXTRA_PROVIDERS:
            try:
                yield from provider()
            except Exception as exc:
                log.warning("metrics provider %s failed: %s", getattr(provider, "__name__", provider), exc)


def replication_slot_metrics():
    from indexing.control.connectors import replication_slots

    retained = GaugeMetricFamily("searchsync_replication_slot_retained_bytes",
                                 "WAL a replication slot keeps on disk.", labels=["source", "slot"])
    active = GaugeMetricFamily("searchsync_replication_slot_active", "1 while a consumer streams from the slot.",
                               labels=["source", "slot"])
    for slot in replication_slots():
        retained.add_metric([slot.source, slot.name], slot.retained_bytes)
        active.add_metric([slot.source, slot.name], 1 if slot.active else 0)
    yield retained
    yield active


CLUSTER_STATUS_CODES = {"green": 0, "yellow": 1, "red": 2}


def search_cluster_metrics():
    """The search cluster's health: status 0 green / 1 yellow / 2 red (alert on 2), nodes, unassigned shards."""
    from indexing.engines import get_engine

    health = get_engine().cluster_health()
    yield GaugeMetricFamily("searchsync_search_cluster_status", "Search cluster health: 0 green, 1 yellow, 2 red.",
                            value=CLUSTER_STATUS_CODES.get(health.status, 2))
    yield GaugeMetricFamily("searchsync_search_cluster_nodes", "Nodes in the search cluster.", value=health.nodes)
    yield GaugeMetricFamily("searchsync_search_cluster_unassigned_shards", "Shard copies with no node.",
                            value=health.unassigned_shards)


EXTRA_PROVIDERS: list = [replication_slot_metrics, search_cluster_metrics]
