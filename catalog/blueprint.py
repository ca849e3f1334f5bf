"""The demo's "products" blueprint: its definition is the files in ``search/``
(registered in ``apps.py``); this helper creates it, e.g. under another name in tests."""

from __future__ import annotations

from indexing.models import IndexBlueprint
from indexing.control.registry import ensure_blueprint


def ensure_products_blueprint(**overrides) -> IndexBlueprint:
    return ensure_blueprint("products", **overrides)


def products_definition() -> dict:
    """The definition the files hold now (settings, mappings, event schema...)."""
    from indexing.control.registry import get_registration

    return get_registration("products").definition()
