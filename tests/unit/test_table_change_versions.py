"""Table change events of a stamped source are versioned by the row's stamp (a delete one above it),
and a row read gives exactly the event its change event decodes to."""

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from catalog.models import Product
from indexing.blueprints.contracts import InvalidEvent
from indexing.pipeline.debezium import decode_table_change
from indexing.blueprints.sources import Source
from indexing.blueprints.table_sources import row_source

STAMPED = Source("catalog.Product", Product, to_event=lambda row: None, stamp_field="change_stamp")
UNSTAMPED = replace(STAMPED, stamp_field=None)

ROW = {"id": 7, "tenant_id": "acme", "title": "Lamp", "description": "", "brand_name": "Nordlys", "brand_id": None,
       "category_id": 3, "price_minor": 1999, "available_qty": 4, "version": 2, "change_stamp": 4242,
       "updated_at": "2026-12-01T11:32:00.123450Z"}


def change(op, row, lsn=99_000_000):
    key = "before" if op == "d" else "after"
    return json.dumps({"op": op, key: row, "source": {"lsn": lsn, "ts_ms": 1_764_588_720_000}}).encode()


def test_an_upsert_is_versioned_by_the_rows_stamp_with_the_columns_as_payload():
    event = decode_table_change(change("u", ROW), "product", STAMPED)
    assert (event.entity_id, event.tenant_id, event.version, event.is_delete) == ("7", "acme", 4242, False)
    assert event.payload == {"title": "Lamp", "description": "", "brand_name": "Nordlys", "brand_id": None,
                             "category_id": 3, "price_minor": 1999, "available_qty": 4}
    assert event.timestamp == datetime(2026, 12, 1, 11, 32, 0, 123450, tzinfo=timezone.utc)


def test_a_delete_is_one_above_the_deleted_rows_stamp():
    event = decode_table_change(change("d", ROW), "product", STAMPED)
    assert event.is_delete and event.version == 4243 and event.payload == {}


def test_a_delete_without_the_stamp_in_its_before_image_is_refused_with_the_cause():
    with pytest.raises(InvalidEvent, match="REPLICA IDENTITY FULL"):
        decode_table_change(change("d", {"id": 7}), "product", STAMPED)


def test_without_a_stamp_column_the_lsn_is_the_version():
    assert decode_table_change(change("u", ROW), "product", UNSTAMPED).version == 99_000_000
    with pytest.raises(LookupError, match="WAL position"):
        row_source(UNSTAMPED, "product")


def test_a_row_read_gives_the_event_its_change_decodes_to():
    streamed = decode_table_change(change("r", ROW), "product", STAMPED)
    product = Product(**{k: v for k, v in ROW.items() if k != "updated_at"},
                      updated_at=datetime(2026, 12, 1, 11, 32, 0, 123450, tzinfo=timezone.utc))
    read = row_source(STAMPED, "product").to_event(product)
    assert replace(read, event_id="") == replace(streamed, event_id="")
