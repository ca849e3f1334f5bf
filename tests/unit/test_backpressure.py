"""The backpressure controller: pause and halve under a full write queue or 429s, grow back (AIMD) after."""

from dataclasses import dataclass

from indexing.pipeline.backpressure import BackpressureController
from indexing.engines import EngineUnavailable, ThreadPoolStats


@dataclass
class FakeEngine:
    queue: int = 0
    capacity: int = 100
    down: bool = False

    def write_thread_pool(self):
        if self.down:
            raise EngineUnavailable("connection refused")
        return ThreadPoolStats(threads=4, active=4, queue=self.queue, queue_capacity=self.capacity, rejected=0)


@dataclass
class Report:
    rejected_429: int = 0


def controller(engine):
    return BackpressureController(engine, max_batch=1000, min_batch=10, queue_ratio=0.8, check_interval_s=0)


def test_a_calm_cluster_never_pauses():
    c = controller(FakeEngine(queue=79))
    assert c.pause_for() is None and c.batch_size == 1000 and c.state == c.OK


def test_a_queue_past_the_ratio_pauses_and_halves_down_to_the_minimum():
    c = controller(FakeEngine(queue=80))
    sizes = []
    for _ in range(10):
        assert c.pause_for() >= c.base_pause_s
        sizes.append(c.batch_size)
    assert sizes[:3] == [500, 250, 125] and sizes[-1] == 10
    assert c.state == c.PAUSED


def test_recovery_grows_back_step_by_step_to_the_maximum():
    engine = FakeEngine(queue=95)
    c = controller(engine)
    c.pause_for()
    c.pause_for()
    assert c.batch_size == 250
    engine.queue = 0
    assert c.pause_for() is None and c.state == c.THROTTLED
    c.on_batch_done(Report())
    assert c.batch_size == 350  # + a tenth of the maximum per clean batch
    for _ in range(10):
        c.on_batch_done(Report())
    assert c.batch_size == 1000 and c.state == c.OK


def test_429s_shrink_at_once_and_block_growth_for_that_batch():
    c = controller(FakeEngine())
    c.on_throttled(3)
    assert c.batch_size == 500 and c.state == c.THROTTLED
    c.on_batch_done(Report(rejected_429=3))
    assert c.batch_size == 500  # no growth after a batch that met 429s
    c.on_batch_done(Report())
    assert c.batch_size == 600


def test_an_unreachable_cluster_is_not_pressure():
    c = controller(FakeEngine(down=True))
    assert c.pause_for() is None
    assert c.last_reading.reason.startswith("unavailable")


def test_unbounded_queue_never_counts_as_full():
    c = controller(FakeEngine(queue=10_000, capacity=-1))
    assert c.pause_for() is None


def test_one_reading_of_the_write_queue_says_when_the_node_is_unreachable():
    from indexing.engines import EngineUnavailable
    from indexing.pipeline.backpressure import read_write_queue

    class Down:
        def write_thread_pool(self):
            raise EngineUnavailable("connection refused")

    reading = read_write_queue(Down(), 0.8)
    assert not reading.under_pressure and not reading.reachable and "connection refused" in reading.reason
