"""Run the outbox relay and/or indexing consumers in the foreground until SIGTERM/SIGINT."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from indexing.runtime.runner import PipelineRunner


class Command(BaseCommand):
    help = "Run the outbox relay and the indexing consumers (what a Celery worker with --cdc runs)."

    def add_arguments(self, parser):
        parser.add_argument("--no-relay", action="store_true", help="Consumers only.")
        parser.add_argument("--no-consumers", action="store_true", help="Relay only.")
        parser.add_argument("--blueprint", action="append", dest="blueprints", help="Only these blueprints.")

    def handle(self, *, no_relay, no_consumers, blueprints, **options):
        runner = PipelineRunner(relay=not no_relay, consumers=not no_consumers,
                                blueprints=[] if not blueprints else blueprints)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        runner.start()
        while not done.wait(1.0):
            if runner.fatal.is_set() or not runner.alive():
                break
        runner.stop()
        if runner.fatal.is_set():
            # Non-zero exit: whatever supervises this process restarts it.
            raise CommandError(f"pipeline thread unrecoverable: {runner.supervisor.fatal_reason}", returncode=1)
