"""The API's exception handler: DRF's own, after what refusals that end a request before its view need.

A request refused for missing or bad credentials counts against its address's throttle (DRF's throttles run
only once authentication and permissions passed); over the rate the answer is 429 with Retry-After.
"""

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.throttles import throttle_unauthenticated


def exception_handler(exc, context):
    request, view = context.get("request"), context.get("view")
    if request is not None and isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        wait = throttle_unauthenticated(request, view)
        if wait is not None:
            exc = exceptions.Throttled(wait)
    return drf_exception_handler(exc, context)
