"""Backfill selections are validated and normalised before anything is planned."""

import pytest

from backfills.selection import InvalidSelection, validate


@pytest.mark.parametrize("selection, normalised", [
    ({}, {"kind": "all"}),
    ({"kind": "range", "start_id": "3", "end_id": 9}, {"kind": "range", "start_id": 3, "end_id": 9}),
    ({"kind": "range", "start_id": 5, "end_id": 5}, {"kind": "range", "start_id": 5, "end_id": 5}),
    ({"kind": "ids", "ids": [3, "1", 3]}, {"kind": "ids", "ids": [1, 3]}),
    ({"kind": "tenant", "tenant_id": "7"}, {"kind": "tenant", "tenant_id": "7"}),
    # Stored in UTC, whatever offset the client sent.
    ({"kind": "updated", "since": "2026-01-01T00:00:00Z"}, {"kind": "updated", "since": "2026-01-01T00:00:00+00:00"}),
    ({"kind": "updated", "until": "2026-01-01T02:00:00+02:00"}, {"kind": "updated", "until": "2026-01-01T00:00:00+00:00"}),
])
def test_valid_selections_are_normalised(selection, normalised):
    assert validate(selection) == normalised


@pytest.mark.parametrize("selection, message", [
    ({"kind": "everything"}, "kind must be one of"),
    ({"kind": "range", "start_id": 1}, "integer start_id and end_id"),
    ({"kind": "range", "start_id": "x", "end_id": 2}, "integer start_id and end_id"),
    ({"kind": "range", "start_id": 9, "end_id": 1}, "must not be greater"),
    ({"kind": "ids", "ids": []}, "non-empty list"),
    ({"kind": "ids", "ids": "1,2"}, "non-empty list"),
    ({"kind": "ids", "ids": ["a"]}, "must be integers"),
    ({"kind": "tenant"}, "tenant_id"),
    ({"kind": "tenant", "tenant_id": 7}, "tenant_id"),
    ({"kind": "updated"}, "since and/or until"),
    ({"kind": "updated", "until": "yesterday"}, "ISO 8601"),
])
def test_invalid_selections_say_why(selection, message):
    with pytest.raises(InvalidSelection, match=message):
        validate(selection)
