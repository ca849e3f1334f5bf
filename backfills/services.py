"""Backfill lifecycle: schedule, plan, pause/resume/cancel, change the rate, finish."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

import audit

from indexing.blueprints.indices import create_physical_index, index_serving_settings
from indexing.conf import searchsync_settings
from indexing.engines import get_engine
from indexing.core.jobs import enqueue
from indexing.models import IndexBlueprint, PhysicalIndex
from indexing.blueprints.table_sources import blueprint_source, versions_are_lsns
from indexing.blueprints.sidecar import SidecarSpec

from . import planner
from . import selection as selections
from .models import Backfill, BackfillProgress
from .signals import rebuild_finished
from .throttle import BackfillThrottle

# A new index is built without replicas and without refreshes: much cheaper to
# fill, and nobody searches it until the cutover restores the serving settings.
BUILD_SETTINGS = {"number_of_replicas": 0, "refresh_interval": "-1"}


RUN_CHUNKS = "backfills.tasks.run_backfill_chunks"


class BackfillStateError(Exception):
    pass


def schedule(blueprint: IndexBlueprint, *, target_index: PhysicalIndex | None = None, selection: dict | None = None,
             rows_per_second: int | None = None, user=None, purpose=Backfill.Purpose.REFILL,
             chunk_size: int = 5000, page_size: int = 500, parallelism: int = 2, start: bool = True) -> Backfill:
    if versions_are_lsns(blueprint):
        # Its documents are versioned by WAL position, which a row read cannot give safely: a
        # transaction in flight may have written an older position than the read's. Debezium's own
        # snapshot (op=r events) is the consistent way to fill such an index.
        raise BackfillStateError("this blueprint consumes table changes versioned by LSN: fill it with the "
                                 "connector's snapshot (recreate the connector with a new slot), not a backfill")
    target_index = target_index or blueprint.live_index()
    if target_index is None or target_index.blueprint_id != blueprint.pk:
        raise BackfillStateError("the target must be a physical index of this blueprint")
    if target_index.state == PhysicalIndex.State.RETIRED:
        raise BackfillStateError("a retired index cannot be backfilled")
    if purpose != Backfill.Purpose.FANOUT:  # a fan-out's selection is the platform's own, not a client's
        selection = selections.validate(selection or {"kind": "all"})
    # The backfill and its chunks commit together: a failed plan leaves no backfill nothing would resume.
    with transaction.atomic():
        backfill = Backfill.objects.create(
            blueprint=blueprint, target_index=target_index, selection=selection,
            rows_per_second=rows_per_second, requested_by=user, purpose=purpose, chunk_size=chunk_size,
            page_size=page_size, parallelism=parallelism,
        )
        if start:
            launch(backfill)
    if purpose != Backfill.Purpose.REBUILD:  # a rebuild is recorded as its cutover's step
        audit.record(user, "backfill.start", _target(backfill),
                     details={"blueprint": blueprint.name, "selection": backfill.selection,
                              "rows_per_second": rows_per_second, "rows_total": backfill.rows_total})
    return backfill


def _target(backfill: Backfill) -> str:
    return f"backfill:{backfill.pk} {backfill.target_index.name}"


def launch(backfill: Backfill) -> None:
    """Plan the chunks and start the chunk workers (Celery, queue `backfills`)."""
    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING, started_at=timezone.now())
    backfill.status = Backfill.Status.RUNNING
    transaction.on_commit(lambda: [enqueue(RUN_CHUNKS, str(backfill.pk)) for _ in range(backfill.parallelism)])


# Which statuses each action may leave: the transitions below and the console's buttons share them.
ACTION_FROM = {
    "pause": {Backfill.Status.RUNNING},
    "resume": {Backfill.Status.PAUSED},
    "cancel": {Backfill.Status.PLANNED, Backfill.Status.RUNNING, Backfill.Status.PAUSED},
    "throttle": {Backfill.Status.PLANNED, Backfill.Status.RUNNING, Backfill.Status.PAUSED},
}


def allowed_actions(backfill: Backfill) -> list[str]:
    """The actions that make sense for the backfill now, in display order."""
    return [action for action in ("throttle", "pause", "resume", "cancel") if backfill.status in ACTION_FROM[action]]


def pause(backfill: Backfill, user=None) -> None:
    _transition(backfill, ACTION_FROM["pause"], Backfill.Status.PAUSED, user=user, action="pause")


def resume(backfill: Backfill, user=None) -> None:
    _transition(backfill, ACTION_FROM["resume"], Backfill.Status.RUNNING, user=user, action="resume")
    transaction.on_commit(lambda: [enqueue(RUN_CHUNKS, str(backfill.pk)) for _ in range(backfill.parallelism)])


def cancel(backfill: Backfill, user=None) -> None:
    _transition(backfill, ACTION_FROM["cancel"], Backfill.Status.CANCELLED, finished=True, user=user, action="cancel")


def set_rate(backfill: Backfill, rows_per_second: int | None, user=None) -> None:
    """Takes effect on every worker's next page: they re-read the limit each time."""
    previous = Backfill.objects.filter(pk=backfill.pk).values_list("rows_per_second", flat=True).first()
    Backfill.objects.filter(pk=backfill.pk).update(rows_per_second=rows_per_second)
    backfill.rows_per_second = rows_per_second
    audit.record(user, "backfill.throttle", _target(backfill),
                 details={"rows_per_second": rows_per_second, "previous": previous})


def _transition(backfill: Backfill, allowed: set, to: str, finished: bool = False, user=None, action: str = "") -> None:
    changes = {"status": to}
    if finished:
        changes["finished_at"] = timezone.now()
    updated = Backfill.objects.filter(pk=backfill.pk, status__in=allowed).update(**changes)
    if not updated:
        backfill.refresh_from_db()
        audit.record(user, f"backfill.{action}", _target(backfill), outcome="refused",
                     details={"reason": f"cannot go from {backfill.status} to {to}"})
        raise BackfillStateError(f"cannot go from {backfill.status} to {to}")
    backfill.status = to
    audit.record(user, f"backfill.{action}", _target(backfill), details={"status": to})


def complete_if_done(backfill_id) -> bool:
    """Mark the backfill completed once every chunk is; finish a rebuild's index."""
    with transaction.atomic():
        backfill = Backfill.objects.select_for_update().select_related("target_index").get(pk=backfill_id)
        if backfill.status != Backfill.Status.RUNNING:
            return False
        if backfill.chunks.exclude(status=BackfillProgress.Status.COMPLETED).exists():
            return False
        backfill.status = Backfill.Status.COMPLETED
        backfill.finished_at = timezone.now()
        backfill.save(update_fields=["status", "finished_at"])
    BackfillThrottle(backfill.pk).reset()
    if backfill.purpose == Backfill.Purpose.REBUILD:
        finish_build(backfill.target_index)
        rebuild_finished.send(sender=Backfill, backfill=backfill)
    return True


# -- fan-outs ------------------------------------------------------------------------



def schedule_fanout(sender=None, *, blueprint: IndexBlueprint, selection: dict, **kwargs) -> Backfill | None:
    """Re-emit every document depending on a changed joined row, in the transaction of the change
    (``indexing.blueprints.dependencies.dependency_changed``): the change never commits without its fan-out.

    Its chunks emit outbox events rather than writing the index, so the documents travel the
    live pipeline to every write target and meet the external versions there."""
    source = blueprint_source(blueprint)
    if not selections.apply(source, source.model.objects.using(source.database), selection).exists():
        return None
    return schedule(blueprint, selection=selection, purpose=Backfill.Purpose.FANOUT,
                    rows_per_second=searchsync_settings.FANOUT_ROWS_PER_SECOND,
                    chunk_size=5000, page_size=1000, parallelism=2)


# -- new index versions ----------------------------------------------------------


def start_build(blueprint: IndexBlueprint, *, user=None, rows_per_second: int | None = None,
                parallelism: int = 2, revision=None) -> Backfill:
    """Create <name>_v<N+1> with build settings, register it as a write target, and backfill it.

    The live consumer reads the write targets on every batch, so from the
    moment the index exists every live change is written to it too: nothing
    updated during the build can be missing afterwards.
    """
    index = create_physical_index(blueprint, state=PhysicalIndex.State.BUILDING, extra_settings=BUILD_SETTINGS,
                                  revision=revision)
    return schedule(blueprint, target_index=index, rows_per_second=rows_per_second, user=user,
                    purpose=Backfill.Purpose.REBUILD, parallelism=parallelism)


def finish_build(index: PhysicalIndex) -> None:
    """Restore the serving settings a build switched off, and mark the index ready."""
    serving = index_serving_settings(index)
    restore = {key: serving.get(key, default) for key, default in (("number_of_replicas", 1), ("refresh_interval", "1s"))}
    engine = get_engine()
    engine.put_settings(index.name, restore)
    engine.refresh(index.name)
    settings = copy.deepcopy(index.settings)
    settings.update(restore)
    side = copy.deepcopy(index.sidecar)
    if side:
        # The sidecar serves with its own short refresh interval, as the revision declares it.
        spec = SidecarSpec.of(index.revision.definition.get("sidecar") if index.revision_id else index.blueprint.sidecar)
        side_restore = {**restore, "refresh_interval": spec.refresh_interval if spec else "1s"}
        engine.put_settings(side["name"], side_restore)
        engine.refresh(side["name"])
        side["settings"].update(side_restore)
    PhysicalIndex.objects.filter(pk=index.pk, state=PhysicalIndex.State.BUILDING).update(
        state=PhysicalIndex.State.READY, settings=settings, sidecar=side)


# -- progress -----------------------------------------------------------------------


@dataclass
class Progress:
    rows_done: int
    rows_total: int
    chunks: dict
    rows_per_second: float
    eta_seconds: float | None

    @property
    def percent(self) -> float:
        if self.rows_total <= 0:
            return 100.0 if self.chunks.get("COMPLETED") else 0.0
        return min(100.0, 100.0 * self.rows_done / self.rows_total)


def progress(backfill: Backfill) -> Progress:
    agg = backfill.chunks.aggregate(done=Sum("rows_done"),
                                    **{s.lower(): Count("pk", filter=Q(status=s)) for s in BackfillProgress.Status.values})
    rows_done = agg.pop("done") or 0
    chunks = {k.upper(): v for k, v in agg.items()}
    end = backfill.finished_at or timezone.now()
    elapsed = (end - backfill.started_at).total_seconds() if backfill.started_at else 0
    rate = rows_done / elapsed if elapsed > 0 else 0.0
    remaining = max(0, backfill.rows_total - rows_done)
    eta = remaining / rate if rate > 0 and backfill.status == Backfill.Status.RUNNING else None
    return Progress(rows_done, backfill.rows_total, chunks, rate, eta)
