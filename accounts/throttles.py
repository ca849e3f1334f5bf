"""DRF's per-user and per-address throttles with their rates read from settings at request
time, so SEARCHSYNC_API_THROTTLE can change (tests, reloads) without re-importing DRF."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class _RateFromSettings:
    def get_rate(self):
        return settings.SEARCHSYNC_API_THROTTLE.get(self.scope)


class UserRateThrottle(_RateFromSettings, throttling.UserRateThrottle):
    """Per user, so all tokens of one user share the budget; anonymous requests go by address."""


class AnonRateThrottle(_RateFromSettings, throttling.AnonRateThrottle):
    pass


def throttle_unauthenticated(request, view) -> float | None:
    """Count a request refused for want of valid credentials against its address's budget.

    DRF authenticates, then checks permissions, then throttles: a bad token is refused during
    authentication and a request without credentials by the permissions, so neither ever reached the
    throttles and guessing tokens went uncounted. The API's exception handler calls this for both
    refusals. Returns the seconds to wait once the address is over its rate, else None."""
    throttle = AnonRateThrottle()
    if throttle.allow_request(request, view):
        return None
    return throttle.wait() or 1.0
