"""Failed logins per address, beside axes' lockout per username and address.

axes locks a (username, address) pair after ``AXES_FAILURE_LIMIT`` failures; on its own that lets one
address try a few passwords on every username it can think of. This handler also counts every failure
from the address, whatever the username, and blocks the address once it reaches
``SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT`` within the cool-off period (``AXES_COOLOFF_TIME``). The block
applies to that address only: a user logging in from anywhere else is not affected, so an attacker
cannot lock an admin out. Both counts come from axes' attempt rows, which admins see and delete (lifting
a block) under Admin → Axes.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


def address_failures(request) -> int:
    """Failed logins from the request's address during the cool-off period, over all usernames."""
    address = getattr(request, "axes_ip_address", None)
    if not address:
        return 0
    attempts = AccessAttempt.objects.filter(ip_address=address)
    if settings.AXES_COOLOFF_TIME is not None:
        attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def address_blocked(request) -> bool:
    return bool(getattr(request, "login_address_blocked", False))


class AddressLimitedHandler(AxesDatabaseHandler):
    """axes' database handler, locked also when the address alone is over its limit.

    axes asks ``get_failures`` both before a login (is the client locked?) and after a failure (does
    this one lock it?), and compares the answer with the per-pair limit; an address over its own
    limit answers at least that limit."""

    def get_failures(self, request, credentials: dict | None = None) -> int:
        failures = super().get_failures(request, credentials)
        limit = settings.SEARCHSYNC_LOGIN_ADDRESS_FAILURE_LIMIT
        if limit and address_failures(request) >= limit:
            request.login_address_blocked = True
            return max(failures, get_failure_limit(request, credentials))
        return failures
