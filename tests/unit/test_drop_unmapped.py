"""Strict mappings: fields the mapping does not know are dropped (and reported), nested ones too."""

from indexing.blueprints.documents import drop_unmapped

MAPPING = {"properties": {
    "id": {"type": "keyword"},
    "brand": {"properties": {"name": {"type": "text"}}},
    "variants": {"type": "nested", "properties": {"sku": {"type": "keyword"}}},
    "tags": {"type": "keyword"},
}}


def test_unknown_top_level_fields_are_dropped_with_a_sample():
    kept, dropped = drop_unmapped({"id": "1", "colour": "red"}, MAPPING)
    assert kept == {"id": "1"} and dropped == {"colour": "red"}


def test_nested_objects_and_lists_of_objects_are_cut_down_with_dotted_names():
    doc = {"brand": {"name": "Acme", "country": "SE"},
           "variants": [{"sku": "a", "weight": 1}, {"sku": "b"}, "loose"],
           "tags": ["x", "y"]}
    kept, dropped = drop_unmapped(doc, MAPPING)
    assert kept == {"brand": {"name": "Acme"}, "variants": [{"sku": "a"}, {"sku": "b"}, "loose"], "tags": ["x", "y"]}
    assert dropped == {"brand.country": "SE", "variants.weight": 1}


def test_an_object_where_the_mapping_has_a_leaf_is_kept_as_is():
    kept, dropped = drop_unmapped({"tags": {"odd": 1}}, MAPPING)
    assert kept == {"tags": {"odd": 1}} and dropped == {}


def test_an_empty_mapping_drops_everything():
    assert drop_unmapped({"a": 1}, {}) == ({}, {"a": 1})
