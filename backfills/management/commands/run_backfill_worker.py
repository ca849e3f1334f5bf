"""Work the chunks of one backfill in the foreground (what a Celery `backfills` task runs)."""

from django.core.management.base import BaseCommand

from backfills.runner import ChunkRunner


class Command(BaseCommand):
    help = "Claim and index chunks of a backfill until none is left."

    def add_arguments(self, parser):
        parser.add_argument("backfill_id")

    def handle(self, *, backfill_id, **options):
        done = ChunkRunner(backfill_id).run()
        self.stdout.write(f"completed {done} chunk(s)")
