"""The cutover state machine: draft → building → verifying → awaiting approval → live → retired.

Every transition is recorded as a ``CutoverStep`` (who, when, result). The
alias swap is one atomic ``_aliases`` request, so searches see the old index
or the new one, never neither. A rollback swaps back while the old index is
kept (the rollback window); afterwards a beat task deletes it.
"""

from __future__ import annotations

import difflib
import json
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

import audit

from indexing.blueprints import alias_add_actions, index_serving_settings
from indexing.engines import get_engine
from indexing.models import BlueprintRevision, IndexBlueprint, PhysicalIndex
from indexing.revisions import follow_live_index

from . import guards
from .models import Backfill, Cutover, CutoverStep
from .signals import rebuild_finished

APPROVE_PERMISSION = "backfills.approve_cutover"
OPEN_STATES = (Cutover.State.DRAFT, Cutover.State.BUILDING, Cutover.State.VERIFYING, Cutover.State.AWAITING_APPROVAL)


class CutoverRefused(Exception):
    """The action is not allowed now; the message says why."""


def _record(cutover: Cutover, step: str, user=None, ok: bool = True, detail: str = "") -> None:
    CutoverStep.objects.create(cutover=cutover, step=step, actor=getattr(user, "username", "") or "", ok=ok,
                               detail=detail)
    audit.record(user, f"cutover.{step.replace(' ', '_')}", f"cutover:{cutover.pk} {cutover.blueprint.name}",
                 details={"detail": detail}, outcome="ok" if ok else "refused")


def _expect(cutover: Cutover, *states) -> None:
    if cutover.state not in states:
        raise CutoverRefused(f"the cutover is {cutover.get_state_display()}; this needs "
                             + " or ".join(Cutover.State(s).label for s in states))


def mapping_diff(old: PhysicalIndex | None, new: PhysicalIndex) -> str:
    """What changes for searches: the serving settings and mapping of the old index against the new one.

    The new index is compared with the settings it will serve with, not the build-time
    ones (no refresh, no replicas), which are restored before the swap anyway."""
    def text(settings, mappings):
        return json.dumps({"settings": settings, "mappings": mappings}, indent=2, sort_keys=True).splitlines()

    before = text(old.settings, old.mappings) if old else []
    after = text(index_serving_settings(new) if new.state == PhysicalIndex.State.BUILDING else new.settings,
                 new.mappings)
    return "\n".join(difflib.unified_diff(before, after, fromfile=old.name if old else "(none)", tofile=new.name,
                                          lineterm=""))


def request(blueprint: IndexBlueprint, user, rows_per_second: int | None = None,
            revision: BlueprintRevision | None = None) -> Cutover:
    """Ask to rebuild the blueprint's index, from ``revision`` (default: its newest revision)."""
    if Cutover.objects.filter(blueprint=blueprint, state__in=OPEN_STATES).exists():
        raise CutoverRefused("this blueprint already has a cutover in progress")
    if revision is not None and revision.blueprint_id != blueprint.pk:
        raise CutoverRefused("the revision belongs to another blueprint")
    revision = revision or blueprint.latest_revision()
    cutover = Cutover.objects.create(blueprint=blueprint, from_index=blueprint.live_index(), requested_by=user,
                                     rows_per_second=rows_per_second, revision=revision)
    _record(cutover, "requested", user, detail=f"revision {revision.number}" if revision else "")
    return cutover


def start_build(cutover: Cutover, user) -> Cutover:
    from .services import start_build as build

    _expect(cutover, Cutover.State.DRAFT)
    # One transaction: the backfill's workers start on commit, when the cutover already points at it.
    with transaction.atomic():
        backfill = build(cutover.blueprint, user=user, rows_per_second=cutover.rows_per_second,
                         revision=cutover.revision)
        cutover.backfill = backfill
        cutover.to_index = backfill.target_index
        cutover.state = Cutover.State.BUILDING
        cutover.mapping_diff = mapping_diff(cutover.from_index, cutover.to_index)
        cutover.save()
        _record(cutover, "build started", user, detail=f"{cutover.to_index.name}, backfill {backfill.pk}")
    cutover.refresh_from_db()
    return cutover


@receiver(rebuild_finished)
def on_build_finished(backfill: Backfill, **signal_kwargs) -> None:
    """Called when a rebuild's backfill completed: verify the cutover that asked for it."""
    for cutover in Cutover.objects.filter(backfill=backfill, state=Cutover.State.BUILDING):
        cutover.state = Cutover.State.VERIFYING
        cutover.save(update_fields=["state", "updated_at"])
        _record(cutover, "build finished", detail=f"{backfill.target_index.name} ready")
        verify(cutover)


def verify(cutover: Cutover, user=None) -> Cutover:
    """Run the guards; all passing moves the cutover to awaiting approval."""
    _expect(cutover, Cutover.State.VERIFYING, Cutover.State.AWAITING_APPROVAL)
    results = guards.run_all(cutover.to_index, get_engine())
    cutover.guard_results = [r.as_dict() for r in results]
    cutover.state = Cutover.State.AWAITING_APPROVAL if cutover.guards_passed else Cutover.State.VERIFYING
    if not cutover.guards_passed:
        cutover.approved_by, cutover.approved_at = None, None
    cutover.save()
    failed = [r.name for r in results if not r.passed]
    _record(cutover, "verified", user, ok=not failed, detail="all guards passed" if not failed else f"failed: {', '.join(failed)}")
    return cutover


def approve(cutover: Cutover, user) -> Cutover:
    _expect(cutover, Cutover.State.AWAITING_APPROVAL)
    if not user.has_perm(APPROVE_PERMISSION):
        _record(cutover, "approval refused", user, ok=False, detail="missing approve_cutover permission")
        raise CutoverRefused("you do not have the approve_cutover permission")
    if cutover.requested_by_id == user.pk:
        _record(cutover, "approval refused", user, ok=False, detail="the requester cannot approve")
        raise CutoverRefused("a cutover must be approved by someone other than its requester")
    if not cutover.guards_passed:
        raise CutoverRefused("every guard must pass before approval")
    cutover.approved_by, cutover.approved_at = user, timezone.now()
    cutover.save()
    _record(cutover, "approved", user)
    return cutover


def execute(cutover: Cutover, user) -> Cutover:
    """Swap the read and write aliases in one atomic request."""
    _expect(cutover, Cutover.State.AWAITING_APPROVAL)
    if cutover.approved_by_id is None:
        raise CutoverRefused("the cutover has not been approved")
    blueprint, old, new = cutover.blueprint, cutover.from_index, cutover.to_index
    actions = [{"remove": {"index": old.name, "alias": a}} for a in (blueprint.read_alias, blueprint.write_alias)] if old else []
    actions += alias_add_actions(blueprint, new.name)
    get_engine().update_aliases(actions)
    now = timezone.now()
    with transaction.atomic():
        PhysicalIndex.objects.filter(pk=new.pk).update(state=PhysicalIndex.State.LIVE, live_at=now)
        if old:
            # Retired indices stop receiving writes; during the rollback window the old index is kept,
            # and a rollback brings it back up to date by dual-writing again (see rollback()).
            PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.READY)
        cutover.state = Cutover.State.LIVE
        cutover.executed_at = now
        cutover.rollback_until = now + timedelta(hours=settings.SEARCHSYNC_BACKFILL["CUTOVER_ROLLBACK_HOURS"])
        cutover.save()
        follow_live_index(blueprint)
    _record(cutover, "swapped", user, detail=f"{blueprint.read_alias}, {blueprint.write_alias}: {old.name if old else '-'} → {new.name}")
    return cutover


def rollback(cutover: Cutover, user) -> Cutover:
    _expect(cutover, Cutover.State.LIVE)
    if cutover.rollback_until and timezone.now() > cutover.rollback_until:
        raise CutoverRefused("the rollback window has closed")
    if cutover.from_index is None:
        raise CutoverRefused("there is no previous index to roll back to")
    blueprint, old, new = cutover.blueprint, cutover.from_index, cutover.to_index
    actions = [{"remove": {"index": new.name, "alias": a}} for a in (blueprint.read_alias, blueprint.write_alias)]
    actions += alias_add_actions(blueprint, old.name)
    get_engine().update_aliases(actions)
    with transaction.atomic():
        PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.LIVE, live_at=timezone.now())
        PhysicalIndex.objects.filter(pk=new.pk).update(state=PhysicalIndex.State.RETIRED, retired_at=timezone.now())
        cutover.state = Cutover.State.ROLLED_BACK
        cutover.save()
        follow_live_index(blueprint)
    _record(cutover, "rolled back", user, detail=f"{blueprint.read_alias}: {new.name} → {old.name}")
    return cutover


def cancel(cutover: Cutover, user) -> Cutover:
    _expect(cutover, *OPEN_STATES)
    if cutover.backfill and cutover.backfill.status in (Backfill.Status.RUNNING, Backfill.Status.PAUSED):
        from .services import cancel as cancel_backfill

        cancel_backfill(cutover.backfill)
    if cutover.to_index:
        PhysicalIndex.objects.filter(pk=cutover.to_index.pk).update(state=PhysicalIndex.State.RETIRED,
                                                                    retired_at=timezone.now())
    cutover.state = Cutover.State.CANCELLED
    cutover.save()
    _record(cutover, "cancelled", user)
    return cutover


def retire_expired(now=None) -> int:
    """After the rollback window: delete the previous index and close the cutover."""
    now = now or timezone.now()
    engine = get_engine()
    done = 0
    for cutover in Cutover.objects.filter(state=Cutover.State.LIVE, rollback_until__lt=now).select_related("from_index"):
        old = cutover.from_index
        if old is not None:
            engine.delete_index(old.name)
            PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.RETIRED, retired_at=now)
        cutover.state = Cutover.State.RETIRED
        cutover.save()
        _record(cutover, "retired", detail=f"deleted {old.name if old else '-'}")
        done += 1
    # Indices of rolled-back or cancelled cutovers are deleted once their window has passed too.
    for index in PhysicalIndex.objects.filter(state=PhysicalIndex.State.RETIRED, retired_at__lt=now - timedelta(
            hours=settings.SEARCHSYNC_BACKFILL["CUTOVER_ROLLBACK_HOURS"])):
        engine.delete_index(index.name)
    return done
