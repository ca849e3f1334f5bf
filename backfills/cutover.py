"""The cutover state machine: draft → building → verifying → awaiting approval → (swapping) → live → retired.

Every transition is a compare-and-set: ``UPDATE … WHERE pk = … AND state IN
(expected)``; zero rows means someone else moved the cutover first and the
caller gets ``CutoverConflict``. The ``CutoverStep`` that records it (who,
when, result) is written in the same transaction.

The alias swap (and a rollback's swap back) records its intent first: the
cutover goes to ``swapping`` (``rolling_back``), then the aliases move in one
atomic, idempotent ``_aliases`` request (alias_swap.py), then the outcome is
recorded. A crash in between leaves the intent behind; ``finish_interrupted``
(beat) completes it, so the database never disagrees with the cluster for long.
"""

from __future__ import annotations

import difflib
import json
from datetime import timedelta

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

import audit

from indexing.blueprints.indices import index_names, index_serving_settings
from indexing.engines import get_engine
from indexing.models import BlueprintRevision, IndexBlueprint, PhysicalIndex
from indexing.control.revisions import follow_live_index

from . import guards
from .alias_swap import swap_aliases
from .models import Backfill, Cutover, CutoverStep
from .signals import rebuild_finished
from indexing.conf import searchsync_settings

APPROVE_PERMISSION = "backfills.approve_cutover"
OPEN_STATES = (Cutover.State.DRAFT, Cutover.State.BUILDING, Cutover.State.VERIFYING, Cutover.State.AWAITING_APPROVAL)
VERIFY_STATES = (Cutover.State.VERIFYING, Cutover.State.AWAITING_APPROVAL)
# A swap younger than this may still be finishing in the request that started it.
INTERRUPTED_AFTER = timedelta(seconds=60)


class CutoverRefused(Exception):
    """The action is not allowed now; the message says why."""


class CutoverConflict(CutoverRefused):
    """The cutover changed under us (another admin or worker acted first)."""


class ApprovalForbidden(CutoverRefused):
    """The user lacks the permission the action needs."""


class SelfApproval(CutoverRefused):
    """The requester tried to approve their own cutover (four eyes)."""


def _record(cutover: Cutover, step: str, user=None, ok: bool = True, detail: str = "") -> None:
    CutoverStep.objects.create(cutover=cutover, step=step, actor=getattr(user, "username", "") or "", ok=ok,
                               detail=detail)
    audit.record(user, f"cutover.{step.replace(' ', '_')}", f"cutover:{cutover.pk} {cutover.blueprint.name}",
                 details={"detail": detail}, outcome="ok" if ok else "refused")


def _states(states) -> str:
    return " or ".join(Cutover.State(s).label for s in states)


def _expect(cutover: Cutover, *states) -> None:
    if cutover.state not in states:
        raise CutoverRefused(f"the cutover is {cutover.get_state_display()}; this needs {_states(states)}")


def _advance(cutover: Cutover, expected, to: str | None, step: str | None, user=None, *, ok: bool = True,
             detail: str = "", where: dict | None = None, **changes) -> Cutover:
    """Compare-and-set the cutover from one of ``expected`` states (and ``where``) and record the step,
    in one transaction (join the caller's if there is one). ``to=None`` keeps the state; ``step=None``
    leaves the record to the caller, later in the same transaction."""
    if to is not None:
        changes["state"] = to
    changes["updated_at"] = timezone.now()
    with transaction.atomic():
        moved = Cutover.objects.filter(pk=cutover.pk, state__in=expected, **(where or {})).update(**changes)
        if not moved:
            cutover.refresh_from_db()
            raise CutoverConflict(f"the cutover changed meanwhile: it is {cutover.get_state_display()}"
                                  + (" and approved" if cutover.approved_by_id else "")
                                  + f"; this needed {_states(expected)}")
        if step is not None:
            _record(cutover, step, user, ok=ok, detail=detail)
    for name, value in changes.items():
        setattr(cutover, name, value)
    return cutover


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


# -- who may do what ---------------------------------------------------------------------


def approval_refusal(cutover: Cutover, user) -> CutoverRefused | None:
    """Why ``user`` may not approve ``cutover`` now, or None: the one rule for the action and the console."""
    if cutover.state != Cutover.State.AWAITING_APPROVAL:
        return CutoverRefused(f"the cutover is {cutover.get_state_display()}; this needs awaiting approval")
    if not user.has_perm(APPROVE_PERMISSION):
        return ApprovalForbidden("you do not have the approve_cutover permission")
    if cutover.requested_by_id == user.pk:
        return SelfApproval("a cutover must be approved by someone other than its requester")
    if not cutover.guards_passed:
        return CutoverRefused("every guard must pass before approval")
    if cutover.approved_by_id is not None:
        return CutoverRefused("the cutover is already approved")
    return None


def execute_refusal(cutover: Cutover) -> CutoverRefused | None:
    if cutover.state != Cutover.State.AWAITING_APPROVAL:
        return CutoverRefused(f"the cutover is {cutover.get_state_display()}; this needs awaiting approval")
    if cutover.approved_by_id is None:
        return CutoverRefused("the cutover has not been approved")
    return None


def rollback_refusal(cutover: Cutover, now=None) -> CutoverRefused | None:
    if cutover.state != Cutover.State.LIVE:
        return CutoverRefused(f"the cutover is {cutover.get_state_display()}; this needs live")
    if cutover.rollback_until and (now or timezone.now()) > cutover.rollback_until:
        return CutoverRefused("the rollback window has closed")
    if cutover.from_index_id is None:
        return CutoverRefused("there is no previous index to roll back to")
    return None


def allowed_actions(cutover: Cutover, user) -> list[str]:
    """The actions the console offers ``user`` on ``cutover`` now, by the rules the actions enforce."""
    if not user.has_perm(APPROVE_PERMISSION):
        return []  # every cutover action is an admin's
    actions = []
    if cutover.state in VERIFY_STATES:
        actions.append("verify")
    if approval_refusal(cutover, user) is None:
        actions.append("approve")
    if execute_refusal(cutover) is None:
        actions.append("execute")
    if rollback_refusal(cutover) is None:
        actions.append("rollback")
    if cutover.state in OPEN_STATES:
        actions.append("cancel")
    return actions


# -- transitions ------------------------------------------------------------------------


def request(blueprint: IndexBlueprint, user, rows_per_second: int | None = None,
            revision: BlueprintRevision | None = None) -> Cutover:
    """Ask to rebuild the blueprint's index, from ``revision`` (default: its newest revision)."""
    if revision is not None and revision.blueprint_id != blueprint.pk:
        raise CutoverRefused("the revision belongs to another blueprint")
    with transaction.atomic():
        # The blueprint row is the lock: two concurrent requests cannot both see "none open".
        IndexBlueprint.objects.select_for_update().get(pk=blueprint.pk)
        if Cutover.objects.filter(blueprint=blueprint, state__in=OPEN_STATES).exists():
            raise CutoverRefused("this blueprint already has a cutover in progress")
        revision = revision or blueprint.latest_revision()
        cutover = Cutover.objects.create(blueprint=blueprint, from_index=blueprint.live_index(), requested_by=user,
                                         rows_per_second=rows_per_second, revision=revision)
        _record(cutover, "requested", user, detail=f"revision {revision.number}" if revision else "")
    return cutover


def start_build(cutover: Cutover, user) -> Cutover:
    from .services import start_build as build

    _expect(cutover, Cutover.State.DRAFT)
    # One transaction: the backfill's workers start on commit, when the cutover already points at it;
    # the compare-and-set comes first, so a second caller waits on the row and then finds it moved.
    with transaction.atomic():
        _advance(cutover, [Cutover.State.DRAFT], Cutover.State.BUILDING, None, user)
        backfill = build(cutover.blueprint, user=user, rows_per_second=cutover.rows_per_second,
                         revision=cutover.revision)
        to_index = backfill.target_index
        Cutover.objects.filter(pk=cutover.pk).update(backfill=backfill, to_index=to_index,
                                                     mapping_diff=mapping_diff(cutover.from_index, to_index))
        _record(cutover, "build started", user, detail=f"{to_index.name}, backfill {backfill.pk}")
    cutover.refresh_from_db()
    return cutover


@receiver(rebuild_finished)
def on_build_finished(backfill: Backfill, **signal_kwargs) -> None:
    """Called when a rebuild's backfill completed: verify the cutover that asked for it."""
    for cutover in Cutover.objects.filter(backfill=backfill, state=Cutover.State.BUILDING):
        try:
            _advance(cutover, [Cutover.State.BUILDING], Cutover.State.VERIFYING, "build finished",
                     detail=f"{backfill.target_index.name} ready")
        except CutoverConflict:
            continue  # cancelled meanwhile, or another worker got here first
        verify(cutover)


def verify(cutover: Cutover, user=None) -> Cutover:
    """Run the guards; all passing moves the cutover to awaiting approval."""
    expected = VERIFY_STATES
    _expect(cutover, *expected)
    results = [r.as_dict() for r in guards.run_all(cutover.to_index, get_engine())]
    passed = bool(results) and all(r["passed"] for r in results)
    failed = [r["name"] for r in results if not r["passed"]]
    changes = {"guard_results": results}
    if not passed:
        changes.update(approved_by=None, approved_at=None)
    return _advance(cutover, expected, Cutover.State.AWAITING_APPROVAL if passed else Cutover.State.VERIFYING,
                    "verified", user, ok=passed, detail="all guards passed" if passed else f"failed: {', '.join(failed)}",
                    **changes)


def approve(cutover: Cutover, user) -> Cutover:
    refusal = approval_refusal(cutover, user)
    if isinstance(refusal, ApprovalForbidden):
        _record(cutover, "approval refused", user, ok=False, detail="missing approve_cutover permission")
    elif isinstance(refusal, SelfApproval):
        _record(cutover, "approval refused", user, ok=False, detail="the requester cannot approve")
    if refusal is not None:
        raise refusal
    # Two admins approving at once: exactly one update finds the cutover still unapproved.
    return _advance(cutover, [Cutover.State.AWAITING_APPROVAL], None, "approved", user,
                    where={"approved_by__isnull": True}, approved_by=user, approved_at=timezone.now())


def execute(cutover: Cutover, user) -> Cutover:
    """Swap the read and write aliases in one atomic request: intent, swap, record."""
    refusal = execute_refusal(cutover)
    if refusal is not None:
        raise refusal
    _advance(cutover, [Cutover.State.AWAITING_APPROVAL], Cutover.State.SWAPPING, "swap started", user,
             where={"approved_by__isnull": False})
    return _finish_swap(cutover, user)


def _finish_swap(cutover: Cutover, user=None, step: str = "swapped") -> Cutover:
    blueprint, old, new = cutover.blueprint, cutover.from_index, cutover.to_index
    swap_aliases(blueprint, new.name, get_engine())
    now = timezone.now()
    with transaction.atomic():
        _advance(cutover, [Cutover.State.SWAPPING], Cutover.State.LIVE, step, user,
                 detail=f"{blueprint.read_alias}, {blueprint.write_alias}: {old.name if old else '-'} → {new.name}",
                 executed_at=now,
                 rollback_until=now + timedelta(hours=searchsync_settings.CUTOVER_ROLLBACK_HOURS))
        PhysicalIndex.objects.filter(pk=new.pk).update(state=PhysicalIndex.State.LIVE, live_at=now)
        if old:
            # Retired indices stop receiving writes; during the rollback window the old index is kept,
            # and a rollback brings it back up to date by dual-writing again (see rollback()).
            PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.READY)
        follow_live_index(blueprint)
    return cutover


def rollback(cutover: Cutover, user) -> Cutover:
    refusal = rollback_refusal(cutover)
    if refusal is not None:
        raise refusal
    _advance(cutover, [Cutover.State.LIVE], Cutover.State.ROLLING_BACK, "rollback started", user)
    return _finish_rollback(cutover, user)


def _finish_rollback(cutover: Cutover, user=None, step: str = "rolled back") -> Cutover:
    blueprint, old, new = cutover.blueprint, cutover.from_index, cutover.to_index
    swap_aliases(blueprint, old.name, get_engine())
    now = timezone.now()
    with transaction.atomic():
        _advance(cutover, [Cutover.State.ROLLING_BACK], Cutover.State.ROLLED_BACK, step, user,
                 detail=f"{blueprint.read_alias}: {new.name} → {old.name}")
        PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.LIVE, live_at=now)
        PhysicalIndex.objects.filter(pk=new.pk).update(state=PhysicalIndex.State.RETIRED, retired_at=now)
        follow_live_index(blueprint)
    return cutover


def finish_interrupted(now=None) -> int:
    """Beat: complete swaps and rollbacks whose process died between the intent and the record."""
    before = (now or timezone.now()) - INTERRUPTED_AFTER
    done = 0
    stuck = Cutover.objects.filter(state__in=(Cutover.State.SWAPPING, Cutover.State.ROLLING_BACK),
                                   updated_at__lt=before).select_related("blueprint", "from_index", "to_index")
    for cutover in stuck:
        try:
            if cutover.state == Cutover.State.SWAPPING:
                _finish_swap(cutover, step="swapped (finished after an interruption)")
            else:
                _finish_rollback(cutover, step="rolled back (finished after an interruption)")
            done += 1
        except CutoverConflict:
            continue  # finished by someone else meanwhile
    return done


def cancel(cutover: Cutover, user) -> Cutover:
    _expect(cutover, *OPEN_STATES)
    with transaction.atomic():
        _advance(cutover, OPEN_STATES, Cutover.State.CANCELLED, "cancelled", user)
        if cutover.backfill and cutover.backfill.status in (Backfill.Status.RUNNING, Backfill.Status.PAUSED):
            from .services import BackfillStateError
            from .services import cancel as cancel_backfill

            try:
                cancel_backfill(cutover.backfill)
            except BackfillStateError:
                pass  # it finished meanwhile: the index is retired below all the same
        if cutover.to_index:
            PhysicalIndex.objects.filter(pk=cutover.to_index.pk).update(state=PhysicalIndex.State.RETIRED,
                                                                        retired_at=timezone.now())
    return cutover


def retire_expired(now=None) -> int:
    """After the rollback window: delete the previous index and close the cutover."""
    now = now or timezone.now()
    engine = get_engine()
    done = 0
    for cutover in Cutover.objects.filter(state=Cutover.State.LIVE, rollback_until__lt=now).select_related("from_index"):
        old = cutover.from_index
        try:
            with transaction.atomic():
                _advance(cutover, [Cutover.State.LIVE], Cutover.State.RETIRED, "retired",
                         detail=f"deleted {old.name if old else '-'}")
                if old is not None:
                    PhysicalIndex.objects.filter(pk=old.pk).update(state=PhysicalIndex.State.RETIRED, retired_at=now)
        except CutoverConflict:
            continue
        # After the commit: a crash before the delete leaves a RETIRED index, which the sweep below deletes.
        if old is not None:
            for name in index_names(old):
                engine.delete_index(name)
        done += 1
    # Indices of rolled-back or cancelled cutovers are deleted once their window has passed too.
    for index in PhysicalIndex.objects.filter(state=PhysicalIndex.State.RETIRED, retired_at__lt=now - timedelta(
            hours=searchsync_settings.CUTOVER_ROLLBACK_HOURS)):
        for name in index_names(index):
            engine.delete_index(name)
    return done
