"""Celery worker bootstep: `celery -A config worker --cdc` also runs the
outbox relay and one indexing consumer per enabled blueprint.

Kafka consumers are long-lived and keep partition state, which does not fit
Celery's short task model; as a bootstep they live exactly as long as the
worker, join their consumer groups when it starts, and leave them cleanly when
it stops. Scaling out means starting more workers with --cdc: Kafka spreads
each blueprint's partitions over them.

If a pipeline thread cannot be kept running, the whole worker shuts down with
a failure exit code rather than serving tasks without its consumer: its
process supervisor then starts a fresh one.
"""

import logging
import os
import threading

from celery import bootsteps
from celery.signals import worker_process_init
from click import Option

log = logging.getLogger(__name__)

EX_FAILURE = 1
# If the warm shutdown has not finished by then (a task stuck, a hung join), exit hard.
HARD_EXIT_AFTER_S = 120.0


def shut_down_worker(thread: str, reason: str) -> None:
    from celery.worker import state

    log.critical("stopping the worker: %s", reason)
    state.should_stop = EX_FAILURE  # checked by the worker's event loop: a warm shutdown, exit code 1
    timer = threading.Timer(HARD_EXIT_AFTER_S, os._exit, args=(EX_FAILURE,))
    timer.daemon = True
    timer.start()


class CdcStep(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, cdc=False, cdc_no_relay=False, **options):
        super().__init__(worker, **options)
        self.enabled = bool(cdc)
        self.with_relay = not cdc_no_relay
        self.runner = None

    def start(self, worker):
        from indexing.runtime.runner import PipelineRunner

        self.runner = PipelineRunner(relay=self.with_relay, on_fatal=shut_down_worker)
        self.runner.start()

    def stop(self, worker):
        if self.runner is not None:
            self.runner.stop()


def _tune_interpreter(**_) -> None:
    from indexing.core.process_tuning import tune_for_streaming

    tune_for_streaming()


def install(app) -> None:
    # Each pool process runs backfill chunks: the same collector and GIL settings as the pipeline threads.
    worker_process_init.connect(_tune_interpreter, weak=False)
    app.user_options["worker"].add(
        Option(("--cdc",), is_flag=True, default=False, help="Also run the outbox relay and indexing consumers.")
    )
    app.user_options["worker"].add(
        Option(("--cdc-no-relay",), is_flag=True, default=False, help="With --cdc: consumers only, no relay.")
    )
    app.steps["worker"].add(CdcStep)
