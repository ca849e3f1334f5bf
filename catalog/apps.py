from pathlib import Path

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Demo catalog (source application)"

    def ready(self):
        from indexing.registry import register_blueprint
        from indexing.sources import Source

        from .documents import build_product, product_event
        from .models import Product
        from .services import AGGREGATE_TYPE

        register_blueprint(
            "products", Path(__file__).resolve().parent / "search", aggregate_type=AGGREGATE_TYPE,
            source=Source("catalog.Product", Product, product_event), builder=build_product,
            canary_payload={"title": "searchsync freshness canary", "price_minor": 0, "available_qty": 0},
        )
