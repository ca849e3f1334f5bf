"""What a consumer says about a search-node outage, and what it marks for the console."""

import logging

from indexing.pipeline.outage import Outage


class Store:
    def __init__(self):
        self.calls = []

    def mark(self, name, reason, now):
        self.calls.append(("mark", name, reason, now))
        return True

    def clear(self, name):
        self.calls.append(("clear", name))


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def messages(caplog, level):
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_pause_is_warned_once_then_every_interval_and_its_end_once(caplog):
    caplog.set_level(logging.INFO, logger="indexing.pipeline.consumer")
    clock, store, lag = Clock(), Store(), [120]
    outage = Outage("products", lambda: lag[0], clock=clock, repeat_s=60, store=store)

    outage.report()
    assert not caplog.records and not store.calls  # nothing happened: nothing said

    outage.unavailable("connection refused")
    assert store.calls == [("mark", "products", "connection refused", clock.now)]
    outage.report()
    [warning] = messages(caplog, logging.WARNING)
    assert "products: indexing is paused for the search node since" in warning
    assert "connection refused" in warning and "120 events waiting" in warning

    for _ in range(5):  # the bulk thread keeps waiting; the log says it once a minute
        clock.now += 10
        outage.unavailable("connection refused")
        outage.report()
    assert len(messages(caplog, logging.WARNING)) == 1
    clock.now += 11
    lag[0] = 250
    outage.report()
    assert "is still paused" in messages(caplog, logging.WARNING)[-1]
    assert "(61 s)" in messages(caplog, logging.WARNING)[-1] and "250 events" in messages(caplog, logging.WARNING)[-1]

    clock.now += 5
    outage.answered()
    assert store.calls[-1] == ("clear", "products")
    outage.report()
    [info] = messages(caplog, logging.INFO)
    assert "indexing resumed after 66 s paused" in info
    outage.answered()  # later bulks: no pause, nothing to clear or say
    outage.report()
    assert store.calls[-1] == ("clear", "products") and len(messages(caplog, logging.INFO)) == 1


def test_an_unknown_lag_does_not_silence_the_warning(caplog):
    caplog.set_level(logging.INFO, logger="indexing.pipeline.consumer")

    def broken():
        raise RuntimeError("kafka slow too")

    outage = Outage("products", broken, clock=Clock(), store=Store())
    outage.unavailable("timeout")
    outage.report()
    assert "? events waiting" in messages(caplog, logging.WARNING)[0]
