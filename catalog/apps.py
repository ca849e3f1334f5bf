from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Demo catalog (source application)"

    def ready(self):
        from . import documents  # noqa: F401  registers the "products" builder
