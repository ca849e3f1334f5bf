"""Everything the console's overview shows about one blueprint, gathered in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from indexing.observability import freshness
from indexing.core import liveness, pauses, stats
from indexing.engines import ClusterHealth, get_engine
from indexing.observability.lag import PartitionLag, consumer_lag
from indexing.observability.thresholds import IndexThreshold
from indexing.models import Alert, DeadLetter, IndexBlueprint, UnmappedField

log = logging.getLogger(__name__)


@dataclass
class IndexFreshness:
    """One index's commit → searchable lag against its own threshold, and its last hour."""

    threshold: IndexThreshold
    lag: freshness.Quantiles | None = None
    chart: list[tuple[str, float]] = field(default_factory=list)  # (minute label, p99 ms)

    @property
    def breached(self) -> bool:
        return self.lag is not None and self.lag.p99_ms > self.threshold.threshold_ms


@dataclass
class IndexStatus:
    blueprint: IndexBlueprint
    live_index: str | None = None
    alias_targets: list[str] = field(default_factory=list)
    write_targets: list[str] = field(default_factory=list)
    documents: int | None = None
    event_lag: freshness.Quantiles | None = None
    canary_lag: freshness.Quantiles | None = None
    sidecar: dict = field(default_factory=dict)  # the live index's sidecar: name, fields, settings
    sidecar_lag: freshness.Quantiles | None = None
    sidecar_documents: int | None = None
    refresh_interval: str = ""
    freshness_breached: bool = False
    chart: list[tuple[str, float]] = field(default_factory=list)  # (minute label, p99 ms) of the main index
    freshness: list[IndexFreshness] = field(default_factory=list)  # the live index, then its sidecar
    partitions: list[PartitionLag] = field(default_factory=list)
    dead_letters: int = 0
    consumers: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    alerts: list = field(default_factory=list)
    unmapped_fields: int = 0
    supervisor: dict = field(default_factory=dict)  # failures/restarts of this blueprint's consumer thread
    pause: pauses.Pause | None = None  # indexing waits for the search node: since when, why

    @property
    def has_consumer(self) -> bool:
        return bool(self.consumers)

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def threshold_ms(self) -> float | None:
        """The main index's threshold (its sidecar has its own, in ``freshness``)."""
        return self.freshness[0].threshold.threshold_ms if self.freshness else None

    @property
    def colour(self) -> str:
        """red: past the freshness threshold, no consumer, or unreachable; amber: paused, backlog or dead letters."""
        if self.errors or not self.consumers or self.alerts:
            return "red"
        if self.freshness_breached:
            return "red"
        if any(c.get("state") in ("paused", "unavailable") for c in self.consumers.values()):
            return "amber"
        if self.dead_letters or self.total_lag > 10_000:
            return "amber"
        return "green"

    @property
    def paused_since(self) -> datetime | None:
        return datetime.fromtimestamp(self.pause.since, timezone.utc) if self.pause else None

    @property
    def consumer_state(self) -> str:
        states = sorted({c.get("state", "?") for c in self.consumers.values()})
        return ", ".join(states) if states else "no consumer"


def index_status(blueprint: IndexBlueprint) -> IndexStatus:
    status = IndexStatus(blueprint)
    live = blueprint.live_index()
    status.live_index = live.name if live else None
    if live is not None:
        status.sidecar = live.sidecar
        status.refresh_interval = str(live.settings.get("refresh_interval", "1s"))
    status.write_targets = [i.name for i in blueprint.write_targets()]
    status.dead_letters = DeadLetter.objects.filter(blueprint=blueprint, status=DeadLetter.Status.PENDING).count()
    status.alerts = list(blueprint.alerts.filter(state=Alert.State.OPEN))
    status.unmapped_fields = UnmappedField.objects.filter(
        index_name__in=status.write_targets, acknowledged=False).count()
    engine = get_engine()
    try:
        status.alias_targets = sorted(engine.get_alias(blueprint.read_alias))
        status.documents = engine.count(blueprint.read_alias)
        if status.sidecar:
            status.sidecar_documents = engine.count(blueprint.sidecar_read_alias)
    except Exception as exc:
        status.errors.append(f"search: {exc}")
    try:
        status.event_lag = freshness.recent(blueprint.name, "event", 60)
        status.canary_lag = freshness.recent(blueprint.name, "canary", 60)
        status.sidecar_lag = freshness.recent(blueprint.name, "sidecar", 60) if status.sidecar else None
        status.freshness_breached = bool(freshness.breaches(blueprint, 60)[1])
        status.consumers = stats.consumer_states(blueprint.name)
        status.counters = stats.counters(blueprint.name)
        status.supervisor = liveness.failures(liveness.consumer_thread(blueprint.name))
        status.pause = pauses.current(blueprint.name)
    except Exception as exc:
        status.errors.append(f"redis: {exc}")
    lags = {"canary": status.canary_lag, "sidecar": status.sidecar_lag}
    for threshold in freshness.index_thresholds(blueprint):
        chart = [(m.minute.strftime("%H:%M"), m.p99_ms) for m in freshness.history(blueprint, threshold.source, 60)]
        status.freshness.append(IndexFreshness(threshold, lags.get(threshold.source), chart))
    status.chart = status.freshness[0].chart if status.freshness else []
    try:
        status.partitions = consumer_lag(blueprint)
    except Exception as exc:
        status.errors.append(f"kafka: {exc}")
    return status


@dataclass
class ClusterStatus:
    """The search cluster's health as the overview shows it; ``error`` when it did not answer."""

    health: ClusterHealth | None = None
    error: str = ""

    @property
    def colour(self) -> str:
        if self.health is None:
            return "red"
        return {"green": "green", "yellow": "amber"}.get(self.health.status, "red")


def cluster_status() -> ClusterStatus:
    try:
        return ClusterStatus(health=get_engine().cluster_health())
    except Exception as exc:
        return ClusterStatus(error=str(exc)[:300])


def all_index_statuses() -> list[IndexStatus]:
    return [index_status(b) for b in IndexBlueprint.objects.filter(enabled=True)]
