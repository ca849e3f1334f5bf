"""The answer to a locked-out login: a page saying so and for how long, 429 with Retry-After."""

import math

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    response = render(request, "registration/locked_out.html", {
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "minutes": math.ceil(seconds / 60) if seconds else None,
    }, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
