"""The API's exception handler: DRF's own, after what refusals that end a request before its view need.

- A request refused for missing or bad credentials counts against its address's throttle (DRF's throttles run
  only once authentication and permissions passed); over the rate the answer is 429 with Retry-After.
- A logged-in user's change refused for want of a permission joins the audit trail (``audit.refusals``).
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.throttles import throttle_unauthenticated
from audit.refusals import record_refusal


def exception_handler(exc, context):
    request = context.get("request")
    if request is not None:
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            wait = throttle_unauthenticated(request, context.get("view"))
            if wait is not None:
                exc = exceptions.Throttled(wait)
        elif isinstance(exc, (exceptions.PermissionDenied, DjangoPermissionDenied)):
            record_refusal(request, str(getattr(exc, "detail", exc)))
    return drf_exception_handler(exc, context)
