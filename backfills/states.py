"""What a backfill's, a chunk's or a cutover's state means to an operator: its colour, whether it is final.

One rule for every page, so the console never shows the same state in two colours."""

from __future__ import annotations

from .models import Backfill, BackfillProgress, Cutover

DONE = {"completed", "live", "retired"}
BROKEN = {"failed"}
MOVING = {"running", "draft", "building", "verifying", "awaiting_approval", "swapping", "rolling_back"}

FINAL_BACKFILL = {Backfill.Status.COMPLETED, Backfill.Status.FAILED, Backfill.Status.CANCELLED}
FINAL_CUTOVER = {Cutover.State.RETIRED, Cutover.State.ROLLED_BACK, Cutover.State.CANCELLED, Cutover.State.FAILED}
FINAL_CHUNK = {BackfillProgress.Status.COMPLETED, BackfillProgress.Status.FAILED}


def status_colour(state: str) -> str:
    """green: done; red: failed; amber: in motion or waiting for someone; grey: stopped, pending or undone."""
    state = (state or "").lower()
    if state in DONE:
        return "green"
    if state in BROKEN:
        return "red"
    if state in MOVING:
        return "amber"
    return "grey"


def is_final(obj) -> bool:
    """Nothing will change by itself any more: pages stop polling it."""
    if isinstance(obj, Cutover):
        return obj.state in FINAL_CUTOVER
    if isinstance(obj, Backfill):
        return obj.status in FINAL_BACKFILL
    if isinstance(obj, BackfillProgress):
        return obj.status in FINAL_CHUNK
    raise TypeError(f"no states for {type(obj).__name__}")
