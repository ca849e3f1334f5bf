"""The answer to a locked-out login: a page saying so and for how long, 429 with Retry-After."""

import math

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.shortcuts import render

from .address_lockout import address_blocked


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    by_address = address_blocked(request)
    response = render(request, "registration/locked_out.html", {
        "username": get_client_username(request, credentials) or "",
        "address_blocked": by_address,
        "failure_limit": (settings.SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT if by_address
                          else get_failure_limit(request, credentials)),
        "minutes": math.ceil(seconds / 60) if seconds else None,
    }, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
