from django.apps import AppConfig


class IndexingConfig(AppConfig):
    name = "indexing"
    verbose_name = "Indexing pipeline"

    def ready(self):
        from django.db.backends.signals import connection_created

        from indexing.core.pg_timestamps import use_c_timestamptz_loader

        connection_created.connect(use_c_timestamptz_loader, dispatch_uid="searchsync-c-timestamptz")
