"""An optional bearer token in front of /metrics.

The metrics name blueprints, indices and topics and show the pipeline's load, so a deployment that
cannot keep /metrics off its public address sets SEARCHSYNC_METRICS_TOKEN: the endpoint then answers
only ``Authorization: Bearer <token>`` (401 otherwise), compared in constant time. Unset, /metrics is
open as Prometheus expects. The view itself lives with the pipeline; the guard wraps it where it is
wired (config/urls.py) and keeps its attributes (no login, no cache).
"""

import functools
import hmac

from django.conf import settings
from django.http import HttpResponse


def _presented_token(request) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_token_required(view):
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        expected = getattr(settings, "SEARCHSYNC_METRICS_TOKEN", "")
        if expected and not hmac.compare_digest(_presented_token(request).encode(), expected.encode()):
            response = HttpResponse("/metrics needs Authorization: Bearer <SEARCHSYNC_METRICS_TOKEN>.\n",
                                    status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return view(request, *args, **kwargs)

    return guarded
