"""Source databases declared from the environment become Django database aliases."""

import dj_database_url
import pytest

from indexing.core.source_databases import DEFAULT, django_databases, parse


def test_sources_become_aliases_with_optional_replicas():
    sources = parse({"SEARCHSYNC_SOURCES": "shop=postgres://app:pw@db1:5432/shop crm=postgres://app@db2/crm",
                     "SEARCHSYNC_SOURCE_SHOP_REPLICA": "postgres://app:pw@db1r:5432/shop"})
    assert list(sources) == [DEFAULT, "shop", "crm"]
    assert (sources["shop"].alias, sources["shop"].replica_alias) == ("source_shop", "source_shop_replica")
    assert sources["crm"].replica_alias == "source_crm"  # no replica declared: read the primary
    databases = django_databases(sources, dj_database_url.parse)
    assert databases["source_shop"]["HOST"] == "db1" and databases["source_shop"]["NAME"] == "shop"
    assert databases["source_shop_replica"]["HOST"] == "db1r"
    assert databases["source_shop_replica"]["TEST"] == {"MIRROR": "source_shop"}
    assert set(databases) == {"source_shop", "source_shop_replica", "source_crm"}


def test_the_demo_is_one_database_named_default():
    assert list(parse({})) == [DEFAULT] and parse({})[DEFAULT].alias == "default"


@pytest.mark.parametrize("value", ["shop", "Shop=postgres://x/y", "default=postgres://x/y",
                                   "a=postgres://x/y a=postgres://x/z"])
def test_malformed_declarations_fail_at_start(value):
    with pytest.raises(ValueError, match="SEARCHSYNC_SOURCES"):
        parse({"SEARCHSYNC_SOURCES": value})
