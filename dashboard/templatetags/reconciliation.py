"""Colours of reconciliation reports in the console."""

from django import template

register = template.Library()


@register.filter
def report_colour(report) -> str:
    """amber while queued or running, red when it failed, else red/green by whether drift was found."""
    if not report.finished:
        return "amber"
    if report.status == report.Status.FAILED or report.drift:
        return "red"
    return "green"
