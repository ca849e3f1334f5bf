"""Streaming processes tune the interpreter once at start: the collector, and the GIL's switch interval."""

import gc
import sys

import pytest

from indexing.core.process_tuning import FIRST_GENERATION_THRESHOLD, tune_for_streaming


@pytest.fixture
def interpreter():
    """Put back what the tuning changes, so the rest of the test run keeps the interpreter's defaults."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(interval)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_the_switch_interval_and_the_collector_follow_the_settings(interpreter, settings):
    sys.setswitchinterval(0.005)
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "GIL_SWITCH_INTERVAL_MS": 0.5}
    tune_for_streaming()
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    assert gc.get_threshold()[0] == FIRST_GENERATION_THRESHOLD
    assert gc.get_freeze_count() > 0


def test_zero_leaves_the_interpreters_own_interval(interpreter, settings):
    sys.setswitchinterval(0.005)
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "GIL_SWITCH_INTERVAL_MS": 0}
    tune_for_streaming()
    assert sys.getswitchinterval() == pytest.approx(0.005)
