"""The shipped default blueprint "products": the seed mapping and event schema."""

from __future__ import annotations

import json
from pathlib import Path

from indexing.models import IndexBlueprint

from .services import AGGREGATE_TYPE

HERE = Path(__file__).resolve().parent / "search"


def products_definition(name: str = "products", aggregate_type: str = AGGREGATE_TYPE, **overrides) -> dict:
    index = json.loads((HERE / "products_mapping.json").read_text())
    schema = json.loads((HERE / "products_event.schema.json").read_text())
    definition = dict(
        name=name,
        aggregate_type=aggregate_type,
        read_alias=f"{name}_current",
        write_alias=f"{name}_write",
        settings=index["settings"],
        mappings=index["mappings"],
        event_schema=schema,
        document_builder="products",
        source_model="catalog.Product",
        canary_payload={"title": "searchsync freshness canary", "price_minor": 0, "available_qty": 0},
    )
    definition.update(overrides)
    return definition


def ensure_products_blueprint(**overrides) -> IndexBlueprint:
    definition = products_definition(**overrides)
    blueprint, _ = IndexBlueprint.objects.get_or_create(name=definition.pop("name"), defaults=definition)
    return blueprint
