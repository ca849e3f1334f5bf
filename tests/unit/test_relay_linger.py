"""The relay's linger: the time a round's worth of rows takes to arrive, within its bounds."""

import pytest

from indexing.outbox.linger import Linger


def rounds(linger: Linger, rate: float, count: int, start: float = 100.0) -> float:
    """``count`` rounds of rows arriving at ``rate``, each starting a linger after the previous one."""
    t = start
    for _ in range(count):
        gap = linger.seconds
        t += gap
        linger.after_round(max(1, round(rate * gap)), t)
    return t


def test_no_rate_seen_yet_waits_the_longest():
    assert Linger(0.1, 0.035, 14).seconds == 0.1


def test_a_low_rate_waits_the_longest():
    linger = Linger(0.1, 0.035, 14)
    rounds(linger, 20, 10)
    assert linger.seconds == 0.1


def test_a_rising_rate_shortens_the_wait_to_a_round_of_events():
    linger = Linger(0.1, 0.035, 14)
    rounds(linger, 200, 30)
    assert linger.seconds == pytest.approx(14 / 200, rel=0.05)


def test_a_high_rate_never_goes_below_the_shortest():
    linger = Linger(0.1, 0.035, 14)
    rounds(linger, 5000, 30)
    assert linger.seconds == 0.035


def test_the_rate_falling_again_lengthens_the_wait():
    linger = Linger(0.1, 0.035, 14)
    t = rounds(linger, 1000, 20)
    rounds(linger, 50, 20, start=t)
    assert linger.seconds == 0.1


def test_one_burst_does_not_swing_the_wait_to_the_shortest():
    linger = Linger(0.1, 0.035, 14)
    t = rounds(linger, 100, 20)
    linger.after_round(400, t + 0.1)  # 4,000/s for one round
    assert linger.seconds > 0.035


def test_reset_after_an_idle_spell_forgets_the_rate():
    linger = Linger(0.1, 0.035, 14)
    t = rounds(linger, 2000, 20)
    linger.reset()
    linger.after_round(1, t + 30)  # the first row after half a minute says nothing about a rate
    assert linger.rate is None and linger.seconds == 0.1


def test_without_events_the_linger_is_fixed():
    linger = Linger(0.1, 0.035, 0)
    rounds(linger, 2000, 20)
    assert linger.seconds == 0.1


def test_shortest_is_bounded_by_longest():
    assert Linger(0.02, 0.035, 14).shortest_s == 0.02
