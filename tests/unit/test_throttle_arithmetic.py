"""The backfill throttle's adaptive factor and rate (the token bucket itself runs in Redis)."""

import pytest

from backfills.throttle import MIN_FACTOR, Pressure, burst_for, effective_rate, next_factor


def test_pressure_halves_the_factor_down_to_its_floor():
    factor, seen = 1.0, []
    for _ in range(8):
        factor = next_factor(factor, Pressure(cluster=True))
        seen.append(factor)
    assert seen[:3] == [0.5, 0.25, 0.125] and seen[-1] == MIN_FACTOR


def test_healthy_pages_recover_a_tenth_at_a_time_up_to_one():
    assert next_factor(0.5, Pressure()) == pytest.approx(0.6)
    assert next_factor(0.95, Pressure()) == 1.0
    assert next_factor(0.5, Pressure(database=True)) == 0.25


def test_effective_rate():
    assert effective_rate(None, 0.5) is None and effective_rate(0, 1.0) is None
    assert effective_rate(1000, 0.25) == 250
    assert effective_rate(10, MIN_FACTOR) == 1.0  # never below one row per second


def test_burst_is_half_a_second_of_the_rate():
    assert burst_for(1000) == 500 and burst_for(1) == 1.0
