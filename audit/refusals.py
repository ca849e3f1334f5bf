"""Refused changes join the audit trail.

A logged-in user's change (any method but GET, HEAD, OPTIONS) refused for want of a permission is
recorded as ``permission.refused``, outcome ``refused``, with the method and path, the view and the
reason. The API's exception handler (config/api_errors.py) calls ``record_refusal``; the console's and
the Django admin's refusals (``PermissionDenied``) reach it through ``RefusalAuditMiddleware``. A user
can repeat a refusal at will, so it is recorded bounded like failed logins (``audit.bounded``): one row
per user, method and path and window, the repeats counted in the window's summary.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from .bounded import repeatable
from .models import AuditEvent

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_REASON_CHARS = 500

REFUSED = repeatable("permission.refused", AuditEvent.Outcome.REFUSED)


def record_refusal(request, reason: str) -> AuditEvent | None:
    user = getattr(request, "user", None)
    if request.method in SAFE_METHODS or not getattr(user, "is_authenticated", False):
        return None
    match = getattr(request, "resolver_match", None)
    target = f"{request.method} {request.path}"[:255]
    return REFUSED.record(user, target, request=request,
                          key={"user": user.get_username(), "method": request.method, "path": request.path},
                          details={"view": match.view_name if match else "", "reason": reason[:MAX_REASON_CHARS]})


class RefusalAuditMiddleware:
    """Records a ``PermissionDenied`` raised by a console or admin view (the API handles its own)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            record_refusal(request, str(exception) or "permission denied")
        return None  # Django answers 403 as before
