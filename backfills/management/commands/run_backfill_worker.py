"""Work the chunks of one backfill in the foreground (what a Celery `backfills` task runs)."""

from django.core.management.base import BaseCommand

from backfills.runner import ChunkRunner
from indexing.core.process_tuning import tune_for_streaming


class Command(BaseCommand):
    help = "Claim and index chunks of a backfill until none is left."

    def add_arguments(self, parser):
        parser.add_argument("backfill_id")

    def handle(self, *, backfill_id, **options):
        tune_for_streaming()  # as a Celery pool process does before it runs chunks
        done = ChunkRunner(backfill_id).run()
        self.stdout.write(f"completed {done} chunk(s)")
