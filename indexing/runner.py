"""Run the relay and the consumers in threads of one process (a Celery worker
started with --cdc, or `manage.py run_pipeline`), and stop them gracefully."""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from .models import IndexBlueprint

log = logging.getLogger(__name__)


class PipelineRunner:
    def __init__(self, relay: bool = True, blueprints: list[str] | None = None):
        self.with_relay = relay
        self.blueprint_names = blueprints if blueprints is not None else settings.SEARCHSYNC["CDC_BLUEPRINTS"]
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def _blueprints(self) -> list[IndexBlueprint]:
        qs = IndexBlueprint.objects.filter(enabled=True)
        if self.blueprint_names:
            qs = qs.filter(name__in=self.blueprint_names)
        return list(qs)

    def _spawn(self, name: str, target) -> None:
        def guarded():
            from django.db import connections

            try:
                target()
            except Exception:
                log.exception("%s crashed", name)
            finally:
                connections.close_all()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        from .consumer import IndexingConsumer
        from .relay import OutboxRelay

        if self.with_relay and settings.SEARCHSYNC_DEBEZIUM["PUBLISHER"] == "relay":
            relay = OutboxRelay()
            self._spawn("outbox-relay", lambda: relay.run(self.stop_event))
        for blueprint in self._blueprints():
            consumer = IndexingConsumer(blueprint)
            self._spawn(f"consumer-{blueprint.name}", lambda c=consumer: c.run(self.stop_event))
        log.info("pipeline started: %s", [t.name for t in self.threads])

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)
