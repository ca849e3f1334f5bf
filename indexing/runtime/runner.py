"""Run the relay and the consumers in supervised threads of one process (a Celery
worker started with --cdc, or `manage.py run_pipeline`), and stop them gracefully.

A thread that dies is restarted with backoff (see supervisor.py); one that keeps
dying makes ``fatal`` set and ``on_fatal`` called, and the caller exits the
process non-zero instead of running on without it. The consumers follow the
blueprints while the process runs: one is started for a newly enabled blueprint
and a disabled one's is stopped (consumer_set.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable


from indexing.core import source_databases
from indexing.core.liveness import relay_thread
from indexing.models import IndexBlueprint
from indexing.runtime.consumer_set import RELOAD_THREAD, ConsumerSet
from indexing.runtime.supervisor import Supervisor, SupervisorPolicy
from indexing.conf import searchsync_settings

log = logging.getLogger(__name__)


class PipelineRunner:
    def __init__(self, relay: bool = True, blueprints: list[str] | None = None, consumers: bool = True,
                 on_fatal: Callable[[str, str], None] | None = None, policy: SupervisorPolicy | None = None):
        self.with_relay = relay
        self.with_consumers = consumers
        self.blueprint_names = blueprints if blueprints is not None else searchsync_settings.CDC_BLUEPRINTS
        self.stop_event = threading.Event()
        self.supervisor = Supervisor(self.stop_event, policy=policy, on_fatal=on_fatal)
        self.consumers: ConsumerSet | None = None

    @property
    def fatal(self) -> threading.Event:
        return self.supervisor.fatal

    @property
    def threads(self) -> list[threading.Thread]:
        return self.supervisor.threads

    def start(self) -> None:
        from indexing.pipeline.consumer import IndexingConsumer
        from indexing.core.process_tuning import tune_for_streaming
        from indexing.outbox.joined_changes import JoinedChangesWatcher
        from indexing.outbox.relay import OutboxRelay

        tune_for_streaming()

        if self.with_relay and searchsync_settings.PUBLISHER == "relay":
            # One relay per source database, each on its own outbox ("default": searchsync's own database).
            for source in source_databases.declared().values():
                self.supervisor.spawn(relay_thread(source.name),
                                      lambda s=source: OutboxRelay(using=s.alias, source=s.name).run)
        if self.with_relay:
            # Changes of tables that declared views join, turned into fan-outs, per source database.
            for source in source_databases.declared().values():
                self.supervisor.spawn(f"joined-changes-{source.name}",
                                      lambda s=source: JoinedChangesWatcher(s.name).run)
        if self.with_consumers:
            # Each (re)start gets a fresh consumer: a closed Kafka client cannot be reused.
            self.consumers = ConsumerSet(self.supervisor, self.blueprint_names,
                                         lambda pk: lambda: IndexingConsumer(IndexBlueprint.objects.get(pk=pk)).run)
            self.consumers.reconcile()
            # Blueprints enabled, disabled or deleted later are followed without a restart.
            self.supervisor.spawn(RELOAD_THREAD, lambda: self.consumers.run)
        log.info("pipeline started: %s", [t.name for t in self.threads])

    def stop(self, timeout: float = 30.0) -> None:
        self.supervisor.stop()
        self.supervisor.join(timeout)

    def alive(self) -> bool:
        return self.supervisor.alive()
