"""DRF's per-user and per-address throttles with their rates read from settings at request
time, so SEARCHSYNC_API_THROTTLE can change (tests, reloads) without re-importing DRF."""

from django.conf import settings
from rest_framework import throttling


class _RateFromSettings:
    def get_rate(self):
        return settings.SEARCHSYNC_API_THROTTLE.get(self.scope)


class UserRateThrottle(_RateFromSettings, throttling.UserRateThrottle):
    """Per user, so all tokens of one user share the budget; anonymous requests go by address."""


class AnonRateThrottle(_RateFromSettings, throttling.AnonRateThrottle):
    pass
