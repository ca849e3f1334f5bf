"""Freshness thresholds per physical index: its refresh interval plus a budget.

Commit → searchable lag includes the wait for the index's next refresh, so one number for every
index is wrong for some of them: a main index refreshed every 30 s is on time at 30 s, its sidecar
refreshed every second is late at 5 s. Each index is therefore held to its own refresh interval
plus ``FRESHNESS_BUDGET_MS``, the time the pipeline itself may take (outbox, relay, Kafka,
consumer, bulk). A blueprint may set an index's threshold outright: ``freshness_threshold_ms``
for the main index, ``sidecar.freshness_threshold_ms`` for its sidecar.

Pure functions of plain values, so the rule is tested without services.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexing.pipeline.visibility import refresh_seconds

MAIN = "canary"  # the FreshnessMinute source that measures the main index
SIDECAR = "sidecar"  # ... and the one that measures its sidecar


@dataclass(frozen=True)
class IndexThreshold:
    index: str  # the physical index; empty when the blueprint has no live index yet
    source: str  # the FreshnessMinute source whose samples measure it
    refresh_ms: float
    threshold_ms: float
    overridden: bool  # set in the blueprint rather than derived from the refresh interval

    @property
    def rule(self) -> str:
        """How the threshold came about, for the console and the alert."""
        if self.overridden:
            return f"{self.threshold_ms:.0f} ms set in the blueprint"
        return f"refresh {self.refresh_ms:.0f} ms + budget {self.threshold_ms - self.refresh_ms:.0f} ms"


def refresh_ms(refresh_interval) -> float:
    """An index setting's refresh interval in ms; 0 when refresh is off (only explicit refreshes)."""
    seconds = refresh_seconds(refresh_interval)
    return (seconds or 0.0) * 1000


def index_threshold(index: str, source: str, refresh_interval, budget_ms: float,
                    override_ms: int | None = None) -> IndexThreshold:
    interval = refresh_ms(refresh_interval)
    if override_ms:
        return IndexThreshold(index, source, interval, float(override_ms), True)
    return IndexThreshold(index, source, interval, interval + budget_ms, False)


def index_thresholds(*, main_index: str, main_refresh_interval, budget_ms: float, main_override_ms: int | None = None,
                     sidecar_index: str = "", sidecar_refresh_interval=None,
                     sidecar_override_ms: int | None = None) -> list[IndexThreshold]:
    """The main index's threshold, and its sidecar's when it has one."""
    result = [index_threshold(main_index, MAIN, main_refresh_interval, budget_ms, main_override_ms)]
    if sidecar_index:
        result.append(index_threshold(sidecar_index, SIDECAR, sidecar_refresh_interval, budget_ms, sidecar_override_ms))
    return result


def event_threshold_ms(indices: list[IndexThreshold]) -> float:
    """Commit → acknowledged by the bulk, before any refresh: what the tightest index leaves the
    pipeline once its refresh interval is taken off. An event acknowledged later than that makes
    that index late whatever its refresh does."""
    return max(0.0, min(t.threshold_ms - t.refresh_ms for t in indices))
