"""One line about one document: do the database, the index copies and search agree, and if not,
where its change is stuck. A pure reading of an ``Inspection`` (``inspector.py``), so each state is
tested without services.

States: ``in_sync``, ``deleted`` (row gone, tombstones or nothing in the index: also in sync),
``awaiting_refresh`` (indexed, not yet searchable), ``waiting_in_outbox``, ``dead_lettered``,
``in_kafka`` (published, not consumed yet), ``no_consumer``, ``missing``, ``stale``,
``tombstone_ahead`` (a tombstone newer than the row: only a new write of the row can win),
``orphaned`` (row gone, a live document remains), ``unknown`` (a stage could not be read).
"""

from __future__ import annotations

from datetime import timezone

IN_SYNC_STATES = ("in_sync", "deleted")


def judge(inspection) -> tuple[str, str]:
    i = inspection
    copies = i.index
    if not copies:
        return "missing", "the blueprint has no index to write to: create its live index (manage.py bootstrap)"
    unreadable = [c for c in copies if c.found is None]
    if i.database.exists is None or unreadable:
        what = i.database.error or "; ".join(f"{c.index}: {c.error}" for c in unreadable)
        return "unknown", f"cannot compare: {what}"
    if i.database.exists is False:
        return _row_gone(i)
    return _row_present(i)


def _row_gone(i) -> tuple[str, str]:
    live = [c for c in i.index if c.found and not c.deleted]
    if not live:
        tombstones = [c for c in i.index if c.found]
        shown = [c for c in i.index if c.searched_version is not None]
        if shown:
            return "awaiting_refresh", (f"deleted, but a search still finds it in {', '.join(c.index for c in shown)} "
                                        "until its index's next refresh")
        if tombstones:
            held = ", ".join(f"{c.index} v{c.version}" for c in tombstones)
            return "deleted", f"deleted: the row does not exist and the index holds tombstones ({held}), hidden from search"
        return "deleted", "the row does not exist and no index holds the document"
    held = ", ".join(f"{c.index} v{c.version}" for c in live)
    state, cause = _cause(i, None)
    return ("orphaned" if state in ("missing", "stale") else state), \
        f"the row does not exist but {held} still hold{'s' if len(live) == 1 else ''} a live document; {cause}"


def _row_present(i) -> tuple[str, str]:
    version = i.database.version
    problems, worst = [], None
    for c in i.index:
        if not c.found:
            problems.append(f"{c.index} does not hold it")
            worst = worst or "missing"
        elif version is None:  # versions are WAL positions: presence is all that compares
            if c.deleted:
                problems.append(f"{c.index} holds a tombstone")
                worst = worst or "stale"
        elif c.deleted and c.version >= version:
            problems.append(f"{c.index} holds a tombstone v{c.version} ≥ database v{version}: an event at the row's "
                            "version loses to it, only a new write of the row can fix it")
            worst = "tombstone_ahead"
        elif c.deleted:
            problems.append(f"{c.index} holds a tombstone v{c.version} < database v{version}")
            worst = worst or "stale"
        elif c.version < version and not c.main_unchanged:
            problems.append(f"{c.index} version {c.version} < database {version}")
            worst = worst or "stale"
        elif c.version > version:
            problems.append(f"{c.index} version {c.version} > database {version}: the database went back "
                            "(a restore?) or was read before a write committed")
            worst = worst or "stale"
    if problems:
        if worst == "tombstone_ahead":
            return worst, "; ".join(problems)
        state, cause = _cause(i, version)
        return (worst if state in ("missing", "stale") else state), "; ".join(problems) + f"; {cause}"
    at = f"version {version}" if version is not None else "the row's last change"
    waiting = [c for c in i.index if c.searchable is False]
    if waiting:
        seen = "; ".join(f"{c.index}: search sees v{c.searched_version}" if c.searched_version is not None
                         else f"{c.index}: not found by search yet" for c in waiting)
        return "awaiting_refresh", (f"indexed at {at}, searchable at its index's next refresh ({seen})")
    unchanged = [c for c in i.index if c.main_unchanged]
    since = "".join(f"; {c.index} holds v{c.version}: only sidecar fields changed since, so its document was not "
                    "rewritten" for c in unchanged)
    return "in_sync", (f"in sync: the database and {len(i.index)} index cop{'y' if len(i.index) == 1 else 'ies'} "
                       f"agree at {at}{since}")


def _cause(i, version: int | None) -> tuple[str, str]:
    """Where the change that would fix the index is now, from the outbox to the consumer."""
    out, stream = i.outbox, i.stream
    if out.used:
        waiting = out.waiting
        if waiting:
            oldest = min(waiting, key=lambda r: r.created_at)
            line = (f"the event v{waiting[0].version} is waiting in the outbox since "
                    f"{oldest.created_at.astimezone(timezone.utc):%H:%M:%S} UTC")
            if out.publisher != "relay":
                return "waiting_in_outbox", line + "; Debezium publishes the outbox: check its connector"
            if out.relays_live == 0:
                return "waiting_in_outbox", line + "; the relay is down (no relay heartbeat)"
            return "waiting_in_outbox", line + f"; {out.relays_live} relay(s) alive: see the relay's log if it stays"
        relayed = [r for r in out.rows if r.state == "dead_lettered" and (version is None or r.version >= version)]
        if relayed:
            return "dead_lettered", (f"the relay dead-lettered its event v{relayed[0].version} "
                                     f"(dead letter #{relayed[0].dead_letter_id}): replay it after fixing the cause")
    pending = [d for d in i.pending_dead_letters if version is None or d.version is None or d.version >= version]
    if pending:
        d = pending[0]
        where = f" on {d.target_index}" if d.target_index else ""
        return "dead_lettered", f"the consumer dead-lettered v{d.version}{where}: {d.reason} (dead letter #{d.id})"
    if stream.lag:
        line = (f"published to {stream.topic} partition {stream.partition}, where the consumer group has "
                f"{stream.lag} message(s) to go")
        if stream.consumers_live == 0:
            return "no_consumer", line + "; no consumer is running"
        return "in_kafka", line
    if stream.consumers_live == 0 and stream.lag is None:
        # Nothing known about the partition (no topic yet, Kafka unreadable): the missing consumer is
        # the likeliest cause. With the lag known to be 0 it is not: nothing waits for it.
        return "no_consumer", "no consumer of this blueprint is running"
    if out.used and not out.error and version is not None and not any(r.version >= version for r in out.rows):
        return "missing", (f"no outbox row carries v{version} (cleaned up after its retention, or never "
                           "emitted): re-index this document")
    return "missing", "its event was published and consumed, yet the index does not hold it: re-index this document"
