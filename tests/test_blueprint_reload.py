"""A running pipeline process follows the blueprints: a consumer starts for a blueprint enabled while
it runs (searchable within 30 s, no restart), and the consumer of a disabled or deleted blueprint
stops gracefully — offsets of what it resolved committed, not restarted, not counted as a failure,
and not reported as "no consumer" by /healthz."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from catalog import services
from catalog.blueprint import ensure_products_blueprint
from indexing.blueprints.indices import ensure_live_index, index_names
from indexing.core import liveness, stats
from indexing.models import IndexBlueprint
from indexing.observability.lag import consumer_lag
from indexing.runtime.runner import PipelineRunner
from tests.helpers import ROOT, process_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# The bound the pipeline promises between enabling a blueprint and its events being searchable.
ENABLE_BOUND_S = 30


class Output:
    """The lines a subprocess writes, collected by a thread so the test can wait for one."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process):
        for raw in process.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def count(self, text: str) -> int:
        return sum(1 for line in list(self.lines) if text in line)

    def tail(self) -> str:
        return "\n".join(self.lines[-40:])


def searchable(engine, blueprint, entity_id) -> bool:
    hits = engine.search(blueprint.read_alias, {"query": {"ids": {"values": [str(entity_id)]}}})["hits"]["hits"]
    return bool(hits)


def consumer_gone(name: str) -> bool:
    return not stats.consumer_states(name)


def test_run_pipeline_starts_and_stops_consumers_as_blueprints_are_enabled_and_disabled(
        isolated_pipeline, unique, engine, admin_client):
    name = f"products-{unique}"
    env = process_env(isolated_pipeline, LOG_LEVEL="INFO", SEARCHSYNC_BLUEPRINT_RELOAD_S="1",
                      SEARCHSYNC_BATCH_WAIT_MS="50", SEARCHSYNC_RELAY_POLL_S="0.2")
    process = subprocess.Popen([sys.executable, "manage.py", "run_pipeline"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = Output(process)
    indices: list[str] = []
    try:
        wait_until(lambda: output.count("pipeline started"), timeout=60, message="run_pipeline started")
        assert not IndexBlueprint.objects.exists()

        # Enabled while the process runs: consumed without a restart.
        blueprint = ensure_products_blueprint(name=name, sidecar={})
        ensure_live_index(blueprint, engine)
        indices = [n for index in blueprint.indices.all() for n in index_names(index)]
        first = services.create_product(tenant_id="t", title="Enabled later", price_minor=1, available_qty=1)
        wait_until(lambda: searchable(engine, blueprint, first.pk), timeout=ENABLE_BOUND_S,
                   message=f"the new blueprint's event searchable; output:\n{output.tail()}")
        assert output.count(f"started a consumer of blueprint {name}") == 1

        # Disabled: its consumer stops, having committed what it indexed, and nothing calls it missing.
        IndexBlueprint.objects.filter(pk=blueprint.pk).update(enabled=False)
        wait_until(lambda: output.count(f"stopping the consumer of blueprint {name}") == 1 and consumer_gone(name),
                   timeout=ENABLE_BOUND_S, message=f"the disabled blueprint's consumer stopped:\n{output.tail()}")
        assert process.poll() is None, output.tail()
        assert sum(p.lag for p in consumer_lag(blueprint)) == 0, "the indexed event's offset was not committed"
        health = admin_client.get("/healthz").json()
        assert name not in health["pipeline"]["consumers"]
        assert liveness.failures(liveness.consumer_thread(name))["failures"] == 0

        # Written while disabled, indexed once it is enabled again: a new consumer resumes from the offsets.
        second = services.create_product(tenant_id="t", title="Written while disabled", price_minor=2,
                                         available_qty=1)
        IndexBlueprint.objects.filter(pk=blueprint.pk).update(enabled=True)
        wait_until(lambda: searchable(engine, blueprint, second.pk), timeout=ENABLE_BOUND_S,
                   message=f"the re-enabled blueprint's event searchable:\n{output.tail()}")
        assert output.count(f"started a consumer of blueprint {name}") == 2

        assert process.poll() is None, output.tail()

        process.terminate()
        assert process.wait(60) == 0, output.tail()
        assert "crashed" not in "\n".join(output.lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        for index in indices:
            engine.delete_index(index)


def test_the_consumer_of_a_deleted_blueprint_stops_and_the_process_runs_on(isolated_pipeline, unique):
    # A bare blueprint (no revision, no index) can be deleted; its consumer only has to be running.
    isolated_pipeline.SEARCHSYNC = {**isolated_pipeline.SEARCHSYNC, "BLUEPRINT_RELOAD_S": 0.5}
    blueprint = IndexBlueprint.objects.create(name=f"bare-{unique}", aggregate_type=f"bare{unique}",
                                              read_alias=f"bare-{unique}_r", write_alias=f"bare-{unique}_w",
                                              document_builder="products", source_model="catalog.Product")
    runner = PipelineRunner(relay=False, blueprints=[blueprint.name])
    runner.start()
    try:
        thread = next(t for t in runner.threads if t.name == liveness.consumer_thread(blueprint.name))
        wait_until(lambda: stats.consumer_states(blueprint.name), timeout=ENABLE_BOUND_S, message="the consumer up")
        blueprint.delete()
        wait_until(lambda: not thread.is_alive(), timeout=ENABLE_BOUND_S, message="the consumer stopped")
        assert consumer_gone(blueprint.name)
        assert runner.alive() and not runner.fatal.is_set()
        assert liveness.failures(liveness.consumer_thread(blueprint.name))["failures"] == 0
    finally:
        runner.stop()
    assert not runner.alive()
