"""Keep a pipeline process's consumers equal to the blueprints it should index, without a restart.

Every ``BLUEPRINT_RELOAD_S`` the process lists the enabled blueprints (only those named in
``CDC_BLUEPRINTS`` or ``run_pipeline --blueprint`` when given): a consumer is started through
the supervisor for each new one, and the consumer of one that was disabled or deleted is
retired. A retired consumer stops as on a process stop — batches still in flight are
abandoned uncommitted, resolved ones were committed as they resolved — and the supervisor
neither restarts it nor counts it as a failure.

A consumer is keyed by its blueprint's id, name and topic: a renamed blueprint (a new consumer
group) or one moved to another topic gets a fresh consumer, since a Kafka subscription and
group are fixed for a consumer's life.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, NamedTuple

from django.db import close_old_connections

from indexing.conf import searchsync_settings
from indexing.core.liveness import consumer_thread
from indexing.models import IndexBlueprint
from indexing.runtime.supervisor import Factory, Supervisor

log = logging.getLogger(__name__)

RELOAD_THREAD = "blueprint-reload"


class ConsumerKey(NamedTuple):
    pk: int
    name: str
    topic: str


class ConsumerSet:
    def __init__(self, supervisor: Supervisor, names: list[str], consumer_for: Callable[[int], Factory]):
        """``consumer_for(pk)`` is the supervisor factory of the consumer of blueprint ``pk``."""
        self.supervisor = supervisor
        self.names = names
        self.consumer_for = consumer_for
        self.running: dict[ConsumerKey, threading.Thread] = {}

    def wanted(self) -> set[ConsumerKey]:
        blueprints = IndexBlueprint.objects.filter(enabled=True)
        if self.names:
            blueprints = blueprints.filter(name__in=self.names)
        return {ConsumerKey(bp.pk, bp.name, bp.topic) for bp in blueprints}

    def reconcile(self) -> None:
        """Retire the consumers of blueprints no longer wanted, then start those of new ones."""
        wanted = self.wanted()
        for key in sorted(self.running.keys() - wanted):
            self.supervisor.retire(self.running.pop(key))
            log.info("stopping the consumer of blueprint %s (topic %s): no longer enabled here", key.name, key.topic)
        for key in sorted(wanted - self.running.keys()):
            self.running[key] = self.supervisor.spawn(consumer_thread(key.name), self.consumer_for(key.pk),
                                                      retirable=True)
            log.info("started a consumer of blueprint %s (topic %s)", key.name, key.topic)

    def run(self, stop: threading.Event) -> None:
        """The reload thread's body: reconcile every interval until the process stops."""
        while not stop.wait(searchsync_settings.BLUEPRINT_RELOAD_S):
            try:
                close_old_connections()
                self.reconcile()
            except Exception as exc:  # the database away: the running consumers go on, retry next time
                log.warning("could not reload the blueprints (%s: %s); the running consumers go on",
                            type(exc).__name__, exc)
