"""Dead letters: what the pipeline could not index, kept with its raw bytes.

Two sources: the consumer (a message read from Kafka it could not index) and
the outbox relay (a row it could never publish, see ``relay_dead_letters``).
Replay re-publishes the original bytes with the original key to the topic, so
a replayed event goes through validation and versioning like any other:
replaying an old event can never overwrite a newer document.

One row per message: a message read again after an offset rewind, or an outbox row
the relay fails on again, adds an attempt to its row (``store``). A replayed
letter is a new message at a new offset; if it fails again it is a new pending row,
while the original stays replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

import audit

from indexing.blueprints.contracts import Event, Incoming
from indexing.models import DeadLetter, IndexBlueprint
from indexing.core.producer import build_producer


@dataclass(frozen=True)
class Letter:
    """A message the pipeline gives up on, why, and what it was about; stored by ``record``."""

    message: Incoming
    reason: DeadLetter.Reason
    error: str
    entity_id: str = ""
    event_id: str = ""
    version: int | None = None
    target_index: str = ""

    @classmethod
    def for_event(cls, message: Incoming, reason: DeadLetter.Reason, error: str, event: Event,
                  target_index: str = "") -> "Letter":
        return cls(message, reason, error, event.entity_id, event.event_id, event.version, target_index)


_COLUMNS = ("blueprint_id", "source", "topic", "partition", "offset", "key", "raw_value", "reason", "error",
            "target_index", "entity_id", "event_id", "version", "status", "replay_count", "attempts", "created_at",
            "last_seen_at", "resolved_by")
# The identity of a letter, as the partial unique indexes of the model declare it (its Meta.constraints).
_IDENTITY = {
    DeadLetter.Source.CONSUMER: ('("blueprint_id", "topic", "partition", "offset", "target_index") '
                                 "WHERE source = 'consumer' AND \"offset\" >= 0"),
    DeadLetter.Source.OUTBOX: "(\"event_id\") WHERE source = 'outbox'",
}


def _identity(row: DeadLetter):
    if row.source == DeadLetter.Source.OUTBOX:
        return ("outbox", row.event_id)
    if row.offset is not None and row.offset >= 0:
        return ("consumer", row.blueprint_id, row.topic, row.partition, row.offset, row.target_index)
    return ("unique", id(row))  # not a Kafka message (a backfilled document): no identity to repeat


def store(rows: list[DeadLetter], using: str = "default") -> int:
    """Insert dead letters; one already stored for the same message (or outbox row) counts another attempt.

    A repeat takes the latest reason and error and its time, and leaves the row's status alone: a
    letter an operator discarded stays discarded, and one replayed stays replayed (its replay is a
    new message, with a row of its own should it fail too)."""
    if not rows:
        return 0
    now = timezone.now()
    unique: dict = {}
    for row in rows:
        key = _identity(row)
        if key in unique:  # the same message twice in one call: one row, both attempts
            unique[key].attempts += 1
            unique[key].reason, unique[key].error = row.reason, row.error
        else:
            row.attempts, row.created_at, row.last_seen_at = 1, now, now
            unique[key] = row
    by_source: dict[str, list[DeadLetter]] = {}
    for row in unique.values():
        by_source.setdefault(row.source, []).append(row)
    table = DeadLetter._meta.db_table
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    with connections[using].cursor() as cursor:
        for source, group in by_source.items():
            values = ", ".join(["(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"] * len(group))
            params = []
            for row in group:
                params += [row.blueprint_id, str(row.source), row.topic, row.partition, row.offset,
                           bytes(row.key) if row.key is not None else None,
                           bytes(row.raw_value) if row.raw_value is not None else None,
                           str(row.reason), row.error, row.target_index, row.entity_id, row.event_id, row.version,
                           str(row.status), row.replay_count, row.attempts, row.created_at, row.last_seen_at, ""]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "
                f"ON CONFLICT {_IDENTITY[source]} DO UPDATE SET "
                f"attempts = {table}.attempts + EXCLUDED.attempts, last_seen_at = EXCLUDED.last_seen_at, "
                f"reason = EXCLUDED.reason, error = EXCLUDED.error", params)
    return len(rows)


def record(blueprint: IndexBlueprint, letters: list[Letter]) -> int:
    """Store dead letters with the raw bytes of their messages."""
    rows = [
        DeadLetter(
            blueprint=blueprint,
            topic=letter.message.topic,
            partition=letter.message.partition,
            offset=letter.message.offset,
            key=letter.message.key,
            raw_value=letter.message.value,
            reason=letter.reason,
            error=letter.error[:10_000],
            target_index=letter.target_index,
            entity_id=str(letter.entity_id)[:255],
            event_id=str(letter.event_id)[:64],
            version=letter.version,
        )
        for letter in letters
    ]
    return store(rows)


def replay(dead_letters: QuerySet | list[DeadLetter], user: str = "", timeout: float = 30.0) -> int:
    """Re-publish pending dead letters to their topics; mark those the broker acknowledged."""
    letters = [d for d in dead_letters if d.status == DeadLetter.Status.PENDING]
    if not letters:
        return 0
    producer = build_producer()
    acked: list[int] = []
    errors: dict[int, str] = {}

    def on_delivery(letter_id):
        def callback(err, _msg):
            if err is None:
                acked.append(letter_id)
            else:
                errors[letter_id] = str(err)

        return callback

    for letter in letters:
        try:
            producer.produce(
                letter.topic,
                key=bytes(letter.key) if letter.key is not None else None,
                value=bytes(letter.raw_value) if letter.raw_value is not None else None,
                headers={"searchsync-replay-of": str(letter.pk)},
                on_delivery=on_delivery(letter.pk),
            )
        except KafkaException as exc:
            # E.g. still too large for the producer: this letter stays pending, the others go on.
            errors[letter.pk] = str(exc.args[0])
        producer.poll(0)
    producer.flush(timeout)
    if acked:
        with transaction.atomic():
            for letter in DeadLetter.objects.select_for_update().filter(pk__in=acked):
                letter.status = DeadLetter.Status.REPLAYED
                letter.replay_count += 1
                letter.resolved_at = timezone.now()
                letter.resolved_by = user
                letter.save(update_fields=["status", "replay_count", "resolved_at", "resolved_by"])
    audit.record(user or None, "dead_letters.replay", f"dead letters: {len(acked)} replayed",
                 details={"ids": sorted(acked), "not_acknowledged": sorted(errors)},
                 outcome="failed" if errors else "ok")
    if errors:
        raise ReplayFailed(f"{len(errors)} dead letter(s) not acknowledged by Kafka: {next(iter(errors.values()))}")
    return len(acked)


def discard(dead_letters: QuerySet, user: str = "") -> int:
    ids = list(dead_letters.filter(status=DeadLetter.Status.PENDING).values_list("pk", flat=True))
    done = DeadLetter.objects.filter(pk__in=ids, status=DeadLetter.Status.PENDING).update(
        status=DeadLetter.Status.DISCARDED, resolved_at=timezone.now(), resolved_by=user
    )
    audit.record(user or None, "dead_letters.discard", f"dead letters: {done} discarded", details={"ids": ids})
    return done


class ReplayFailed(RuntimeError):
    pass


def matching(*, blueprint: str | None = None, reason: str | None = None, status: str | None = DeadLetter.Status.PENDING,
             since=None, until=None, ids: list[int] | None = None, source: str | None = None) -> QuerySet:
    """Dead letters matching the filters the console and the API offer."""
    qs = DeadLetter.objects.select_related("blueprint")
    if blueprint:
        qs = qs.filter(blueprint__name=blueprint)
    if reason:
        qs = qs.filter(reason=reason)
    if source:
        qs = qs.filter(source=source)
    if status:
        qs = qs.filter(status=status)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs
