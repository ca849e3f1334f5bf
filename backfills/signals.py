"""Signals of backfills: lower modules announce, the cutover state machine listens."""

from django.dispatch import Signal

# A rebuild's backfill completed and its index is ready (kwargs: backfill).
rebuild_finished = Signal()
