"""A SIGKILLed consumer stops counting as live once its group drops it (the consumer's session
timeout, 10 s), not when its 30 s heartbeat expires: searchsync_consumers_live, /healthz and the
overview follow the broker's member list."""

import re
import signal
import time

import pytest

from indexing.core import liveness, stats
from indexing.core.topics import ensure_topic
from tests.helpers import consumer_process, wait_until

pytestmark = pytest.mark.slow


def metric_live(client, name) -> float | None:
    body = client.get("/metrics").content.decode()
    match = re.search(rf'^searchsync_consumers_live{{blueprint="{re.escape(name)}"}} (\S+)$', body, re.M)
    return float(match.group(1)) if match else None


def test_a_killed_consumer_stops_counting_when_its_group_drops_it(products_blueprint, isolated_pipeline, client):
    name = products_blueprint.name
    ensure_topic(products_blueprint.topic)
    procs = [consumer_process(products_blueprint, isolated_pipeline) for _ in range(2)]
    try:
        wait_until(lambda: liveness.live_consumers(name) == 2, timeout=120, message="two consumers in the group")
        assert metric_live(client, name) == 2
        procs[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[0].wait()
        wait_until(lambda: liveness.live_consumers(name) == 1, timeout=45, interval=0.1,
                   message="the killed consumer no longer live")
        took = time.monotonic() - killed
        heartbeats = len(stats.consumer_states(name))
        print(f"\na SIGKILLed consumer counted as live for {took:.1f} s after the kill "
              f"(heartbeats alone still counted {heartbeats} then)")
        assert metric_live(client, name) == 1
        # The broker drops the member after session.timeout.ms (10 s); heartbeats alone said 2 for up to 30 s.
        assert took < 20, took
        assert heartbeats == 2  # the heartbeat was still fresh: membership made the difference
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            proc.wait(60)
