"""One colour rule and one list of allowed actions per state (no database needed)."""

import pytest

from backfills import services
from backfills.models import Backfill, Cutover
from backfills.states import is_final, status_colour


@pytest.mark.parametrize("state, colour", [
    ("completed", "green"), ("COMPLETED", "green"), ("live", "green"), ("retired", "green"),
    ("failed", "red"), ("FAILED", "red"),
    ("running", "amber"), ("RUNNING", "amber"), ("building", "amber"), ("awaiting_approval", "amber"),
    ("swapping", "amber"),
    ("planned", "grey"), ("paused", "grey"), ("PENDING", "grey"), ("cancelled", "grey"), ("rolled_back", "grey"),
])
def test_status_colour(state, colour):
    assert status_colour(state) == colour


@pytest.mark.parametrize("status, actions", [
    ("planned", ["throttle", "cancel"]),
    ("running", ["throttle", "pause", "cancel"]),
    ("paused", ["throttle", "resume", "cancel"]),
    ("completed", []), ("failed", []), ("cancelled", []),
])
def test_backfill_actions_per_status(status, actions):
    assert services.allowed_actions(Backfill(status=status)) == actions


def test_final_states_stop_polling():
    assert is_final(Backfill(status="completed")) and not is_final(Backfill(status="paused"))
    assert is_final(Cutover(state="rolled_back")) and not is_final(Cutover(state="swapping"))
