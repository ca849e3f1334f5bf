from django.apps import AppConfig


class BackfillsConfig(AppConfig):
    name = "backfills"
    verbose_name = "Backfills and cutovers"

    def ready(self):
        from indexing.observability.metrics import EXTRA_PROVIDERS

        from indexing.blueprints.dependencies import dependency_changed

        from . import cutover  # noqa: F401  connects the cutover to rebuild_finished
        from .services import schedule_fanout
        from .metrics import backfill_metrics

        dependency_changed.connect(schedule_fanout, weak=False, dispatch_uid="backfills-fanout")
        if backfill_metrics not in EXTRA_PROVIDERS:
            EXTRA_PROVIDERS.append(backfill_metrics)
