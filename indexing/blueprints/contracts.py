"""The event contract: decode Kafka bytes into a validated ``Event``.

The seed's ``SearchIndexEvent`` JSON Schema is stored on each blueprint and
checked with ``jsonschema-rs`` (formats included). Validation runs on every
event of the hot path; the Rust validator takes about 3 µs an event where the
compiled-to-Python ``fastjsonschema`` took 13 µs, which was the consumer's
largest single cost. Anything that fails here is permanent: retrying cannot fix
it, so it goes to the dead letters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import jsonschema_rs
import orjson

# JSON Schema's "uuid" format is draft 2019-09's; the seed's schema is draft 7, whose validators
# do not know it, so it is given here (as it was with every validator this contract used).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FORMATS = {"uuid": lambda value: _UUID.match(value) is not None}


@dataclass(slots=True)
class Incoming:
    """A Kafka message as the pipeline sees it, before it is decoded into an ``Event``.

    Never changed once made. This and ``Event`` are made once per message on the consumer's hot
    path, where a frozen dataclass's constructor cost twice as much: slots, not frozen."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class InvalidEvent(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason  # a DeadLetter.Reason
        self.message = message


@dataclass(slots=True)
class Event:
    event_id: str
    event_type: str
    entity_id: str
    tenant_id: str
    version: int
    timestamp: datetime
    payload: dict = field(default_factory=dict)

    @property
    def is_delete(self) -> bool:
        return self.event_type.endswith("_DELETE")

    def to_json(self) -> dict:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "entity_id": self.entity_id,
            "tenant_id": self.tenant_id,
            "version": self.version,
            "timestamp": self.timestamp.isoformat(),
            "payload": self.payload,
        }


def event_type_for(aggregate_type: str, delete: bool) -> str:
    return f"{aggregate_type.upper()}_{'DELETE' if delete else 'UPSERT'}"


@lru_cache(maxsize=64)
def _validator(schema_json: str):
    return jsonschema_rs.validator_for(json.loads(schema_json), validate_formats=True, formats=FORMATS)


def validator_for(schema: dict):
    """The validator of a schema (``validate`` raises ``jsonschema_rs.ValidationError``); raises if the schema is invalid.

    Cached by the schema's canonical text, so a changed blueprint gets a new validator."""
    return _validator(json.dumps(schema, sort_keys=True))


_REASONS = None


def _reasons():
    # Resolved once: an import statement per message was a tenth of decode's time.
    global _REASONS
    if _REASONS is None:
        from indexing.models import DeadLetter

        _REASONS = DeadLetter.Reason
    return _REASONS


class Contract:
    """One schema's compiled validator. Resolve it once per batch: looking a validator up by the
    schema's canonical text serialises the whole schema, which is too much to pay per message.

    With ``aggregate_type``, a well-formed event of another aggregate (``BRAND_UPSERT`` on the
    products topic) is refused as ``unknown_aggregate`` before the schema is checked: it is not a
    malformed product event but one this blueprint does not consume, and the reason says so."""

    def __init__(self, schema: dict, aggregate_type: str | None = None):
        self.check = validator_for(schema).validate
        self.aggregate = aggregate_type.upper() if aggregate_type else None

    def validate(self, event: Event) -> None:
        """Check an event built by an adapter (not decoded from the contract's JSON) against the schema."""
        data = event.to_json()
        if event.is_delete and not data["payload"]:
            del data["payload"]
        try:
            self.check(data)
        except jsonschema_rs.ValidationError as exc:
            raise InvalidEvent(_reasons().SCHEMA_INVALID, _describe(exc)) from exc

    def decode(self, raw: bytes | None) -> Event:
        reason = _reasons()
        if raw is None:
            raise InvalidEvent(reason.UNDECODABLE, "empty message value (Kafka tombstone) without an event")
        try:
            # orjson checks UTF-8 and parses in one pass, straight from the bytes.
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # The standard library decides what orjson refuses but JSON allows (integers beyond 64 bits,
            # which the schema then rejects), so the outcome is the same as ever; only failures pay twice.
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidEvent(reason.UNDECODABLE, f"not a UTF-8 JSON document: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidEvent(reason.SCHEMA_INVALID, "event must be a JSON object")
        if self.aggregate is not None:
            self._check_aggregate(data.get("event_type"))
        if isinstance(data.get("payload"), str):
            # Debezium's outbox router sends the jsonb column as text when it cannot expand it.
            try:
                data["payload"] = json.loads(data["payload"])
            except json.JSONDecodeError as exc:
                raise InvalidEvent(reason.SCHEMA_INVALID, f"payload is a string but not JSON: {exc}") from exc
        try:
            self.check(data)
        except jsonschema_rs.ValidationError as exc:
            raise InvalidEvent(reason.SCHEMA_INVALID, _describe(exc)) from exc
        try:
            timestamp = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEvent(reason.SCHEMA_INVALID, f"timestamp: {exc}") from exc
        return _event(data, timestamp)

    def _check_aggregate(self, event_type) -> None:
        if not isinstance(event_type, str):
            return  # the schema says what is wrong with it
        aggregate, _, action = event_type.rpartition("_")
        if action in ("UPSERT", "DELETE") and aggregate != self.aggregate:
            raise InvalidEvent(_reasons().UNKNOWN_AGGREGATE,
                               f"event_type {event_type} is of aggregate {aggregate}; this topic's blueprint "
                               f"consumes {self.aggregate}")


def _describe(exc: "jsonschema_rs.ValidationError") -> str:
    """The failure with the field it is about, e.g. ``payload.price_minor: "9" is not of type "integer"``."""
    path = ".".join(str(part) for part in exc.instance_path)
    return f"{path}: {exc.message}" if path else exc.message


def validate(event: Event, schema: dict) -> None:
    Contract(schema).validate(event)


def decode_event(raw: bytes | None, schema: dict) -> Event:
    """One message against a schema; a batch should build one ``Contract`` and call ``decode``."""
    return Contract(schema).decode(raw)


def _event(data: dict, timestamp: datetime) -> Event:
    return Event(
        event_id=data["event_id"],
        event_type=data["event_type"],
        entity_id=data["entity_id"],
        tenant_id=data["tenant_id"],
        version=int(data["version"]),
        timestamp=timestamp,
        payload=data.get("payload") or {},
    )
