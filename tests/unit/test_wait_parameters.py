"""Read-your-writes parameters and refresh intervals: parsed without a request reaching a service."""

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from indexing.pipeline import read_your_writes, visibility


def test_timeout_is_capped_and_defaults():
    factory = APIRequestFactory()

    def parse(query):
        return read_your_writes.from_request(Request(factory.post(f"/x?{query}")))

    assert parse("wait=searchable&timeout=3600").timeout_s == visibility.MAX_TIMEOUT_S
    assert parse("wait=searchable").timeout_s == read_your_writes.DEFAULT_TIMEOUT_S
    assert parse("wait=searchable&timeout=0.25").timeout_s == 0.25
    assert parse("") is None
    with pytest.raises(ValidationError):
        parse("wait=searchable&timeout=nan")


@pytest.mark.parametrize("value, seconds", [("1s", 1.0), ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("-1", None),
                                            (None, 1.0), ("250", 0.25)])
def test_refresh_intervals(value, seconds):
    assert visibility.refresh_seconds(value) == seconds
