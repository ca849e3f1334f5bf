"""The reconciliation pacer keeps the long-run rate by sleeping off what ran ahead; a new rate restarts it."""

from indexing.reconciliation import Pacer


class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_items_ahead_of_the_rate_are_slept_off():
    clock = Clock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)
    assert pacer.pace(50) == 0.5  # 50 items at 100/s take half a second
    clock.now += 0.2  # the next chunk took 0.2 s to read
    assert round(pacer.pace(50), 6) == 0.3
    assert round(clock.now - 100.0, 6) == 1.0  # 100 items in exactly one second


def test_slow_reads_never_sleep_and_no_rate_means_no_pacing():
    clock = Clock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)
    clock.now += 5
    assert pacer.pace(100) == 0.0 and clock.slept == []
    unpaced = Pacer(None, clock=clock, sleep=clock.sleep)
    assert unpaced.pace(10_000) == 0.0


def test_a_rate_change_restarts_the_measurement_without_a_catch_up_burst():
    clock = Clock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)
    clock.now += 60  # a long pause: at the old rate 600 items would be "owed"
    pacer.set_rate(100)
    assert pacer.pace(100) == 1.0
    pacer.set_rate(100)  # the same rate changes nothing
    assert pacer.pace(100) == 1.0
