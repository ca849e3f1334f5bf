"""Periodic work of the audit trail (beat schedule in settings: SEARCHSYNC_AUDIT's block)."""

from celery import shared_task

from .bounded import summarise_closed_windows


@shared_task(name="audit.tasks.summarise_repeated_events")
def summarise_repeated_events() -> int:
    """Write the summary rows of repeatable events whose window is over."""
    return len(summarise_closed_windows())
