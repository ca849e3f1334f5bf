"""Print every searchsync setting: its environment variable, type, current value, default and meaning."""

from django.core.management.base import BaseCommand

from indexing.conf import DECLARED, searchsync_settings


class Command(BaseCommand):
    help = "List searchsync's settings (indexing/conf.py) with their current values."

    def handle(self, *args, **options):
        width = max(len(s.env) for s in DECLARED)
        for s in DECLARED:
            value = getattr(searchsync_settings, s.name)
            marker = "" if value == s.default else f"   (default {s.default!r})"
            self.stdout.write(f"{s.env:<{width}}  {s.kind:<12} {value!r}{marker}\n{'':<{width}}  {s.meaning}")
