from pathlib import Path

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Demo catalog (source application)"

    def ready(self):
        from indexing.blueprints.dependencies import Dependency
        from indexing.permissions import roles_ensured
        from indexing.control.registry import register_blueprint, register_model
        from indexing.blueprints.sources import Source

        from .brands import brand_payload
        from .documents import AGGREGATE_TYPE, JOINED_FIELDS, build_product, product_event, product_events, product_row_events
        from .models import Brand, Category, Product
        from .permissions import grant_product_writes

        search = Path(__file__).resolve().parent / "search"
        register_blueprint(
            "products", search, aggregate_type=AGGREGATE_TYPE,
            source=Source("catalog.Product", Product, product_event, to_events=product_row_events,
                          ids_to_events=product_events, joined_fields=JOINED_FIELDS, stamp_field="change_stamp"),
            builder=build_product,
            # Documents show the brand's name and the category's path: a rename or a move fans out.
            depends_on=[Dependency(model=Brand, via="brand_id", fields=("name",)),
                        Dependency(model=Category, via="category_id", fields=("name", "parent"), subtree="parent")],
            canary_payload={"title": "searchsync freshness canary", "price_minor": 0, "available_qty": 0},
        )
        register_model("brands", Brand, files_dir=search, aggregate_type="brand", payload=brand_payload,
                       canary_payload={"name": "searchsync freshness canary"})
        # Operators and admins write catalog data; the platform's roles know nothing of it.
        roles_ensured.connect(lambda **kwargs: grant_product_writes(), weak=False, dispatch_uid="catalog-writers")
