"""Alerting hooks: freshness past its threshold, drift found, dead letters growing.

Each condition is evaluated per blueprint by a beat task. Opening an alert
notifies the configured webhook once; while the condition lasts the same alert
is only updated (no alert storms), and clearing it resolves the alert and
notifies again.
"""

from __future__ import annotations

import logging

import requests
from django.db import IntegrityError, transaction
from django.utils import timezone

from indexing.observability import freshness
from indexing.models import Alert, DeadLetter, IndexBlueprint, Reconciliation
from indexing.core.redis_store import get_redis
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)
DEAD_LETTER_MARK = "searchsync:alerts:dead-letters:{name}"


def notify(alert: Alert, event: str) -> None:
    url = searchsync_settings.ALERT_WEBHOOK_URL
    if not url:
        return
    body = {"event": event, "blueprint": alert.blueprint.name if alert.blueprint else None, "subject": alert.subject,
            "condition": alert.condition, "state": alert.state,
            "message": alert.message, "value": alert.value, "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None}
    try:
        response = requests.post(url, json=body, timeout=searchsync_settings.ALERT_WEBHOOK_TIMEOUT_S)
        response.raise_for_status()
        Alert.objects.filter(pk=alert.pk).update(notified=True, notify_error="")
    except requests.RequestException as exc:
        # Recorded on the alert, shown in the console; the alert itself stands regardless.
        log.warning("alert webhook failed: %s", exc)
        Alert.objects.filter(pk=alert.pk).update(notify_error=str(exc)[:1000])


def raise_alert(blueprint: IndexBlueprint | None, condition: str, message: str, value: float | None,
                subject: str = "") -> Alert:
    current = Alert.objects.filter(blueprint=blueprint, condition=condition, subject=subject,
                                   state=Alert.State.OPEN).first()
    if current is not None:
        Alert.objects.filter(pk=current.pk).update(message=message, value=value, updated_at=timezone.now())
        return current
    try:
        with transaction.atomic():
            alert = Alert.objects.create(blueprint=blueprint, condition=condition, subject=subject, message=message,
                                         value=value)
    except IntegrityError:  # another evaluator opened it a moment ago
        return Alert.objects.get(blueprint=blueprint, condition=condition, subject=subject, state=Alert.State.OPEN)
    notify(alert, "opened")
    return alert


def clear(blueprint: IndexBlueprint | None, condition: str, subject: str = "") -> None:
    for alert in Alert.objects.filter(blueprint=blueprint, condition=condition, subject=subject, state=Alert.State.OPEN):
        alert.state = Alert.State.RESOLVED
        alert.resolved_at = timezone.now()
        alert.save(update_fields=["state", "resolved_at", "updated_at"])
        notify(alert, "resolved")


def freshness_message(blueprint: IndexBlueprint, source: str, p99: float, limit: float, window: int) -> str:
    """Which index is late and by which rule: each index has its own threshold."""
    index = next((t for t in freshness.index_thresholds(blueprint) if t.source == source), None)
    if index is None:  # events: commit → acknowledged, before any refresh
        return (f"p99 commit→indexed {p99:.0f} ms over the last {window} s (threshold {limit:.0f} ms: "
                f"what the tightest index's threshold leaves after its refresh interval)")
    return (f"p99 commit→searchable {p99:.0f} ms on {index.index or blueprint.name} over the last {window} s "
            f"(threshold {limit:.0f} ms: {index.rule})")


def evaluate(blueprint: IndexBlueprint) -> list[str]:
    """Open or clear each condition of one blueprint; returns the conditions now open."""
    open_now = []
    window = searchsync_settings.ALERT_FRESHNESS_WINDOW_S
    worst, past = freshness.breaches(blueprint, window)
    if past:
        source, p99, limit = max(past, key=lambda b: b[1] - b[2])
        raise_alert(blueprint, Alert.Condition.FRESHNESS, freshness_message(blueprint, source, p99, limit, window), p99)
        open_now.append(Alert.Condition.FRESHNESS)
    elif worst is not None:
        clear(blueprint, Alert.Condition.FRESHNESS)

    latest = (Reconciliation.objects.filter(blueprint=blueprint, status=Reconciliation.Status.COMPLETED)
              .order_by("-finished_at").first())
    if latest is not None and latest.drift:
        raise_alert(blueprint, Alert.Condition.DRIFT,
                    f"reconciliation #{latest.pk} found {latest.drift} drifted documents "
                    f"(missing {latest.missing}, stale {latest.stale}, orphaned {latest.orphaned})", latest.drift)
        open_now.append(Alert.Condition.DRIFT)
    elif latest is not None:
        clear(blueprint, Alert.Condition.DRIFT)

    pending = DeadLetter.objects.filter(blueprint=blueprint, status=DeadLetter.Status.PENDING).count()
    mark_key = DEAD_LETTER_MARK.format(name=blueprint.name)
    previous = int(get_redis().get(mark_key) or 0)
    get_redis().set(mark_key, pending, ex=86400)
    if pending and (pending > previous or Alert.objects.filter(
            blueprint=blueprint, condition=Alert.Condition.DEAD_LETTERS, state=Alert.State.OPEN).exists()):
        raise_alert(blueprint, Alert.Condition.DEAD_LETTERS, f"{pending} dead letters pending (was {previous})", pending)
        open_now.append(Alert.Condition.DEAD_LETTERS)
    elif not pending:
        clear(blueprint, Alert.Condition.DEAD_LETTERS)
    return open_now


def evaluate_slots() -> list[str]:
    """A replication slot retaining WAL past the bound, in any source database: an abandoned slot
    fills that database's disk. A source that cannot be read leaves its alerts as they were."""
    from indexing.control.connectors import SlotsUnreadable, replication_slots

    alarming = []
    try:
        slots = replication_slots(strict=True)
    except SlotsUnreadable as exc:
        log.warning("replication slots not read: %s", exc)
        return alarming
    for slot in slots:
        if slot.alarming:
            raise_alert(None, Alert.Condition.SLOT_LAG,
                        f"slot {slot.name} in source database {slot.source} retains "
                        f"{slot.retained_bytes / 1048576:.0f} MiB of WAL"
                        f" ({'active' if slot.active else 'no consumer attached'})", slot.retained_bytes,
                        subject=slot.subject)
            alarming.append(slot.subject)
    for alert in Alert.objects.filter(condition=Alert.Condition.SLOT_LAG, state=Alert.State.OPEN):
        if alert.subject not in alarming:
            clear(None, Alert.Condition.SLOT_LAG, alert.subject)
    return alarming


def evaluate_cluster() -> bool:
    """The search cluster red: some primary shard has no active copy, so writes to it are retried
    (not dead-lettered) and searches miss its documents until a node comes back. Yellow (a replica
    missing) is shown on the overview but does not alert: nothing fails. A cluster that does not
    answer at all is the dependencies panel's business, and leaves the alert as it was."""
    from indexing.engines import get_engine

    engine = get_engine()
    try:
        health = engine.cluster_health()
    except Exception as exc:
        log.warning("cluster health unavailable: %s", exc)
        return Alert.objects.filter(condition=Alert.Condition.CLUSTER_RED, state=Alert.State.OPEN).exists()
    subject = engine.url
    if health.status == "red":
        raise_alert(None, Alert.Condition.CLUSTER_RED,
                    f"search cluster red: {health.unassigned_shards} unassigned shard(s), "
                    f"{health.data_nodes} data node(s) in the cluster", health.unassigned_shards, subject=subject)
        return True
    clear(None, Alert.Condition.CLUSTER_RED, subject)
    return False


def evaluate_all() -> int:
    return (sum(len(evaluate(b)) for b in IndexBlueprint.objects.filter(enabled=True)) + len(evaluate_slots())
            + int(evaluate_cluster()))
