"""The supervisor restarts a dying thread with backoff and gives up after too many failures in a window."""

import threading
import time

import pytest

from indexing.runtime.supervisor import FailureWindow, Supervisor, SupervisorPolicy

FAST = SupervisorPolicy(max_failures=3, window_s=60.0, backoff_base_s=0.01, backoff_max_s=0.02)


def run_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def test_a_crashing_thread_is_restarted_with_a_fresh_instance_and_counted():
    stop = threading.Event()
    made, recorded = [], []

    def factory():
        made.append(1)
        n = len(made)

        def body(stop_event):
            if n <= 2:
                raise RuntimeError(f"boom {n}")
            stop_event.wait()

        return body

    sup = Supervisor(stop, FAST, record=lambda *a: recorded.append(a))
    sup.spawn("consumer-x", factory)
    assert run_until(lambda: len(made) == 3)
    stop.set()
    sup.join(5)
    assert not sup.alive() and not sup.fatal.is_set()
    assert recorded == [("consumer-x", "RuntimeError: boom 1", True), ("consumer-x", "RuntimeError: boom 2", True)]


def test_too_many_failures_within_the_window_are_fatal():
    stop, fatal = threading.Event(), []

    def factory():
        def body(stop_event):
            raise ValueError("always")

        return body

    recorded = []
    sup = Supervisor(stop, FAST, on_fatal=lambda name, why: fatal.append((name, why)),
                     record=lambda *a: recorded.append(a))
    thread = sup.spawn("outbox-relay", factory)
    thread.join(5)
    assert sup.fatal.is_set()
    assert fatal and fatal[0][0] == "outbox-relay" and "3 times" in fatal[0][1]
    assert [r[2] for r in recorded] == [True, True, False]  # the last failure is not followed by a restart


def test_returning_without_being_asked_to_stop_is_a_failure():
    stop, recorded = threading.Event(), []
    sup = Supervisor(stop, FAST, record=lambda *a: recorded.append(a))
    sup.spawn("consumer-y", lambda: (lambda stop_event: None)).join(5)
    assert sup.fatal.is_set()
    assert recorded[0][1] == "exited without being asked to stop"


def test_a_stop_during_the_backoff_ends_the_thread_without_restart():
    stop, made = threading.Event(), []
    slow = SupervisorPolicy(max_failures=10, window_s=60, backoff_base_s=30, backoff_max_s=30)

    def factory():
        made.append(1)

        def body(stop_event):
            raise RuntimeError("x")

        return body

    sup = Supervisor(stop, slow, record=lambda *a: None)
    thread = sup.spawn("t", factory)
    assert run_until(lambda: len(made) == 1)
    stop.set()
    thread.join(2)
    assert not thread.is_alive() and len(made) == 1


def test_failures_outside_the_window_are_forgotten():
    window = FailureWindow(limit=3, window_s=10)
    assert not window.add(0) and not window.add(5)
    assert not window.add(14)  # the one at 0 fell out of the window
    assert window.add(15)


def test_restart_delay_never_below_the_base():
    policy = SupervisorPolicy(backoff_base_s=1.0, backoff_max_s=30.0)
    delays = [policy.restart_delay(a) for a in range(10) for _ in range(20)]
    assert min(delays) >= 1.0 and max(delays) <= 31.0


def test_a_retired_thread_ends_without_restart_or_failure_and_the_others_go_on():
    stop, made, recorded = threading.Event(), [], []

    def factory():
        made.append(1)
        return lambda stop_event: stop_event.wait()

    sup = Supervisor(stop, FAST, record=lambda *a: recorded.append(a))
    retired = sup.spawn("consumer-old", factory, retirable=True)
    other = sup.spawn("consumer-other", factory, retirable=True)
    assert run_until(lambda: len(made) == 2)
    sup.retire(retired)
    retired.join(2)
    assert not retired.is_alive() and other.is_alive()
    assert len(made) == 2 and recorded == [] and not sup.fatal.is_set()
    sup.stop()
    sup.join(5)
    assert not sup.alive() and recorded == []


def test_a_thread_raising_while_it_is_retired_is_not_restarted_or_counted():
    stop, made, recorded = threading.Event(), [], []

    def factory():
        made.append(1)

        def body(stop_event):
            stop_event.wait()
            raise RuntimeError("broken on the way out")

        return body

    sup = Supervisor(stop, FAST, record=lambda *a: recorded.append(a))
    thread = sup.spawn("consumer-z", factory, retirable=True)
    assert run_until(lambda: len(made) == 1)
    sup.retire(thread)
    thread.join(2)
    assert not thread.is_alive() and len(made) == 1 and recorded == []


def test_stop_ends_retirable_threads_and_only_those_can_be_retired():
    stop = threading.Event()
    sup = Supervisor(stop, FAST, record=lambda *a: None)
    shared = sup.spawn("outbox-relay", lambda: (lambda stop_event: stop_event.wait()))
    own = sup.spawn("consumer-a", lambda: (lambda stop_event: stop_event.wait()), retirable=True)
    with pytest.raises(ValueError):
        sup.retire(shared)
    sup.stop()
    sup.join(5)
    assert not shared.is_alive() and not own.is_alive()
