"""Indexing never stops silently: pipeline threads restart after a crash, a broker that is not up yet
is waited for, liveness shows in /metrics and /healthz, and a crash loop ends the process non-zero.

The broker drill never touches the shared Kafka: the runner is pointed at a port where nothing
listens, and a named devstack Kafka instance of this test is started there later.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from catalog import services
from indexing.core import liveness
from indexing.pipeline.broker import KafkaBroker
from indexing.pipeline.consumer import IndexingConsumer
from indexing.core.redis_store import get_redis
from indexing.runtime.runner import PipelineRunner
from indexing.runtime.supervisor import SupervisorPolicy
from tests.helpers import devstack, wait_converged, wait_until
from tests.test_metrics import scrape, value

DRILL_KAFKA = {"DEVSTACK_KAFKA_NAME": "kafka-drill", "DEVSTACK_KAFKA_PORT": "19292",
               "DEVSTACK_KAFKA_CONTROLLER_PORT": "19293", "DEVSTACK_KAFKA_HEAP_OPTS": "-Xms256m -Xmx512m"}
FAST = SupervisorPolicy(max_failures=5, window_s=300, backoff_base_s=1.0, backoff_max_s=5.0)


@pytest.fixture
def forget_failures(products_blueprint):
    yield
    thread = liveness.consumer_thread(products_blueprint.name)
    get_redis().delete(liveness.SUPERVISOR_KEY.format(thread=thread))
    get_redis().srem(liveness.SUPERVISED_KEY, thread)


def live(client, name):
    return value(scrape(client), "searchsync_consumers_live", blueprint=name)


@pytest.mark.slow
def test_runner_started_while_kafka_is_down_resumes_by_itself_when_it_comes_up(client, admin_client, settings,
                                                                               products_blueprint, engine):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{DRILL_KAFKA['DEVSTACK_KAFKA_PORT']}"
    name = products_blueprint.name
    runner = PipelineRunner(relay=True, blueprints=[name], policy=FAST)
    runner.start()
    try:
        ids = [services.create_product(tenant_id="t", title=f"Outage {i}", price_minor=i, available_qty=1).pk
               for i in range(20)]
        time.sleep(5)
        assert runner.alive() and not runner.fatal.is_set()
        assert live(client, name) == 0
        health = admin_client.get("/healthz")  # the pipeline's details are for logged-in users
        assert health.status_code == 503 and health.json()["pipeline"]["consumers"][name] == 0

        devstack("up", "kafka", env=DRILL_KAFKA)
        services.update_product(ids[0], title="After the broker came up")
        wait_converged(engine, products_blueprint.read_alias, timeout=180)
        assert live(client, name) == 1
        assert admin_client.get("/healthz").json()["pipeline"]["consumers"][name] == 1
        assert not runner.fatal.is_set()
    finally:
        runner.stop()
        devstack("down", "kafka", env={"DEVSTACK_KAFKA_NAME": DRILL_KAFKA["DEVSTACK_KAFKA_NAME"]}, check=False)


def test_an_exception_outside_the_batch_restarts_the_consumer_and_the_metric_shows_the_gap(
        client, products_blueprint, engine, monkeypatch, forget_failures):
    name = products_blueprint.name
    original = KafkaBroker.consume_batch
    crashed = threading.Event()
    delivered = threading.Event()

    def consume_then_crash(self, max_messages, timeout):
        # The poll after the first batch was handed over: outside the per-batch try, like a client bug.
        if delivered.is_set() and not crashed.is_set():
            crashed.set()
            raise RuntimeError("injected crash outside the per-batch try")
        batch = original(self, max_messages, timeout)
        if batch:
            delivered.set()
        return batch

    monkeypatch.setattr(KafkaBroker, "consume_batch", consume_then_crash)
    runner = PipelineRunner(relay=True, blueprints=[name], policy=FAST)
    runner.start()
    try:
        services.create_product(tenant_id="t", title="Before the crash", price_minor=1, available_qty=1)
        wait_until(crashed.is_set, timeout=60, message="the injected crash")
        observed = []
        wait_until(lambda: observed.append(live(client, name)) or observed[-1] == 1, timeout=60, interval=0.1,
                   message="the consumer back")
        assert 0 in observed, f"the gap never showed in the metric: {observed}"
        samples = scrape(client)
        thread = liveness.consumer_thread(name)
        assert value(samples, "searchsync_pipeline_thread_failures_total", thread=thread) == 1
        assert value(samples, "searchsync_pipeline_thread_restarts_total", thread=thread) == 1
        for i in range(10):
            services.create_product(tenant_id="t", title=f"After the crash {i}", price_minor=i, available_qty=1)
        wait_converged(engine, products_blueprint.read_alias, timeout=60)
        assert not runner.fatal.is_set()
    finally:
        runner.stop()


def test_run_pipeline_exits_non_zero_when_a_consumer_keeps_crashing(settings, products_blueprint, monkeypatch,
                                                                   forget_failures):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "SUPERVISOR_MAX_FAILURES": 3, "SUPERVISOR_BACKOFF_BASE_S": 0.05,
                           "SUPERVISOR_BACKOFF_MAX_S": 0.1}

    def crash(self, stop=None, max_batches=None):
        raise RuntimeError("cannot start")

    monkeypatch.setattr(IndexingConsumer, "run", crash)
    started = time.monotonic()
    with pytest.raises(CommandError) as failed:
        call_command("run_pipeline", "--no-relay", "--blueprint", products_blueprint.name)
    assert failed.value.returncode == 1
    assert "failed 3 times" in str(failed.value)
    assert time.monotonic() - started < 30
    assert liveness.failures(liveness.consumer_thread(products_blueprint.name))["failures"] == 3


def test_celery_worker_with_cdc_exits_non_zero_when_a_consumer_keeps_crashing(products_blueprint, isolated_pipeline,
                                                                             unique, forget_failures):
    """A misconfiguration that crashes the consumer on every start (an unknown search engine) must end the
    worker with a failure exit code, not leave it serving tasks without a consumer."""
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    db = connection.settings_dict
    env = {**os.environ,
           "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "SEARCHSYNC_TOPIC_PREFIX": isolated_pipeline.SEARCHSYNC["TOPIC_PREFIX"],
           "SEARCHSYNC_CONSUMER_GROUP_PREFIX": isolated_pipeline.SEARCHSYNC["CONSUMER_GROUP_PREFIX"],
           "SEARCHSYNC_CDC_BLUEPRINTS": products_blueprint.name, "SEARCH_ENGINE": "no-such-engine",
           "SEARCHSYNC_SUPERVISOR_MAX_FAILURES": "3", "SEARCHSYNC_SUPERVISOR_BACKOFF_BASE_S": "0.2",
           "SEARCHSYNC_SUPERVISOR_BACKOFF_MAX_S": "0.5", "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--cdc", "--cdc-no-relay", "--pool", "solo",
         "-Q", f"test-{unique}", "-n", f"test-{unique}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=Path(__file__).resolve().parent.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = worker.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
        raise AssertionError("the worker kept running without its consumer:\n" + output.decode()[-3000:])
    assert worker.returncode == 1, output.decode()[-3000:]
    assert b"giving up so the process is restarted" in output
