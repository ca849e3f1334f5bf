"""Filtering the trail, shared by the console page and the API."""

from .models import AuditEvent


def matching(*, actor=None, action=None, outcome=None, target=None, since=None, until=None):
    qs = AuditEvent.objects.all()
    if actor:
        qs = qs.filter(actor=actor)
    if action:
        # "cutover" matches every cutover step; "cutover.approve" just that one.
        qs = qs.filter(action=action) | qs.filter(action__startswith=f"{action}.")
    if outcome:
        qs = qs.filter(outcome=outcome)
    if target:
        qs = qs.filter(target__icontains=target)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs.order_by("-created_at", "-id")
