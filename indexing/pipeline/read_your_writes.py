"""Read-your-writes for REST API writes: ``?wait=searchable&timeout=5``.

A view of any registered model wraps its write::

    wait = read_your_writes.from_request(request)      # 400 on bad parameters; None when not asked
    with read_your_writes.writing(wait) as written:
        product = services.update_product(...)         # its outbox events are captured
    body = {**data, **read_your_writes.answer(wait, written)}

``answer`` blocks at most ``timeout`` seconds (capped at ``visibility.MAX_TIMEOUT_S``) and returns
``{"search": {"outcome": "searchable" | "timeout", "lag_ms": ..., ...}}``; see ``visibility``.
Waits are bounded per process and per user (``wait_limits``): past a cap the write answers at once
with ``"outcome": "not_waited"`` and the reason.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

import redis

from indexing.pipeline import visibility, wait_limits

DEFAULT_TIMEOUT_S = 5.0


class WaitParamsSerializer(serializers.Serializer):
    wait = serializers.ChoiceField(choices=["searchable"], required=False,
                                   help_text="`searchable`: answer only once the change is searchable, or the "
                                             "timeout passed.")
    timeout = serializers.FloatField(required=False, min_value=0.001,
                                     help_text=f"Seconds to wait at most (default {DEFAULT_TIMEOUT_S:g}, "
                                               f"capped at {visibility.MAX_TIMEOUT_S:g}). Needs `wait`.")

    def validate_timeout(self, value):
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number of seconds")
        return value

    def validate(self, attrs):
        if "timeout" in attrs and "wait" not in attrs:
            raise serializers.ValidationError({"timeout": ["only with wait=searchable"]})
        return attrs


@dataclass(frozen=True)
class Wait:
    timeout_s: float
    user: str = ""  # whose wait it is, for the per-user cap


def _waiter(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anonymous"


def from_request(request) -> Wait | None:
    """The wait the client asked for, or None; invalid parameters raise a 400 with field errors."""
    params = WaitParamsSerializer(data={k: request.query_params[k] for k in ("wait", "timeout")
                                        if k in request.query_params})
    params.is_valid(raise_exception=True)
    if "wait" not in params.validated_data:
        return None
    return Wait(min(params.validated_data.get("timeout", DEFAULT_TIMEOUT_S), visibility.MAX_TIMEOUT_S),
                _waiter(request))


@contextmanager
def writing(wait: Wait | None):
    """Around the write (its transaction inside): captures what it publishes when the client waits."""
    if wait is None:
        yield None
        return
    with visibility.capture(wait.timeout_s) as current:
        yield current


def answer(wait: Wait | None, written) -> dict:
    if wait is None or written is None:
        return {}
    with wait_limits.slot(wait.user, wait.timeout_s) as refused:
        if refused is None:
            return {"search": visibility.wait_searchable(written, wait.timeout_s).as_json()}
    try:
        visibility.release(written)
    except redis.RedisError:
        pass  # the waiter's entry ends at its deadline anyway
    return {"search": visibility.not_waited(written, refused.reason, refused.limit).as_json()}


# -- OpenAPI ---------------------------------------------------------------------------

PARAMETERS = [
    OpenApiParameter("wait", str, enum=["searchable"], required=False,
                     description="Answer only once the change is searchable in every index search clients read "
                                 "(the blueprint's live index and its sidecar), or the timeout passed. The wait "
                                 "uses the indexing consumer's acknowledgements and the indices' refresh "
                                 "intervals, never a search per client."),
    OpenApiParameter("timeout", float, required=False,
                     description=f"Seconds to wait at most with `wait=searchable` (default {DEFAULT_TIMEOUT_S:g}, "
                                 f"values above {visibility.MAX_TIMEOUT_S:g} are capped; 0 or less is a 400)."),
]


class IndexStateSerializer(serializers.Serializer):
    index = serializers.CharField()
    acknowledged_version = serializers.IntegerField(allow_null=True,
                                                    help_text="Highest version the engine acknowledged so far.")
    acknowledged_at = serializers.FloatField(allow_null=True, help_text="Unix time of that acknowledgement.")
    refresh_interval_s = serializers.FloatField(allow_null=True, help_text="null: the index does not refresh.")
    searchable_at = serializers.FloatField(allow_null=True,
                                           help_text="Acknowledgement + refresh interval: searchable from then on.")
    status = serializers.ChoiceField(
        choices=["searchable", "refreshing", "not_indexed"],
        help_text="When the answer was made: `searchable`; `refreshing` (the engine acknowledged the write, "
                  "searchable at its next refresh, in `expected_in_ms`); `not_indexed` (the consumer has not "
                  "written it yet; once written, searchable within `refresh_interval_s`).")
    expected_in_ms = serializers.FloatField(allow_null=True,
                                            help_text="Milliseconds until searchable in this index, when known.")


class SearchOutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=["searchable", "timeout", "not_waited"],
        help_text="`searchable`: searchable in every index search clients read; `timeout`: not yet, after "
                  "waiting `timeout` seconds; `not_waited`: the write is done but the answer did not wait, "
                  "because too many waits ran at once (see `reason`): search for it later or retry the wait "
                  "with a later write.")
    reason = serializers.CharField(required=False,
                                   help_text="With `not_waited`: why, e.g. `too many concurrent waits`.")
    limit = serializers.ChoiceField(choices=["user", "process", ""], required=False,
                                    help_text="With `not_waited`: the cap that was full, `user` (at most "
                                              "SEARCHSYNC_WAITS_PER_USER waits per user over all web processes) or "
                                              "`process` (SEARCHSYNC_WAITS_PER_PROCESS per web process); empty "
                                              "when the wait could not be counted.")
    waited_ms = serializers.FloatField(help_text="How long the request waited after the write committed.")
    waited_on = serializers.ListField(child=serializers.CharField(),
                                      help_text="The indices search clients read for this write: the answer "
                                                "waited until the write was searchable in each.")
    pending = serializers.ListField(child=serializers.CharField(),
                                    help_text="Those not yet searchable when the answer was made (see each "
                                              "index's `status` and `expected_in_ms`).")
    lag_ms = serializers.FloatField(help_text="Commit → searchable; for a timeout or `not_waited`, commit → now "
                                              "(the lag so far).")
    indices = IndexStateSerializer(many=True, help_text="Per index, what the engine acknowledged; empty with "
                                                        "`not_waited`.")


class WaitedSerializer(serializers.Serializer):
    """Added to a write's answer when it was asked with ``wait=searchable``."""

    search = SearchOutcomeSerializer(required=False)
