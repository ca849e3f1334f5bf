"""What configuration decides for a cluster: topic replication, index replicas, the hosts of SEARCH_URL."""

import pytest

from indexing.blueprints.indices import serving_settings
from indexing.engines.base import failover_options, split_hosts
from indexing.models import IndexBlueprint
from indexing.core.topics import topic_config


def test_topic_settings_come_from_configuration(settings):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "TOPIC_MIN_INSYNC_REPLICAS": 0}
    assert "min.insync.replicas" not in topic_config()
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "TOPIC_MIN_INSYNC_REPLICAS": 2}
    assert topic_config()["min.insync.replicas"] == "2"


def test_index_replicas_from_configuration_override_the_blueprint(settings):
    blueprint = IndexBlueprint(name="p", settings={"number_of_shards": 1, "number_of_replicas": 0})
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "INDEX_REPLICAS": None}
    assert serving_settings(blueprint)["number_of_replicas"] == 0
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "INDEX_REPLICAS": 1}
    assert serving_settings(blueprint)["number_of_replicas"] == 1
    assert blueprint.settings["number_of_replicas"] == 0  # the blueprint itself is left alone


def test_search_url_names_one_host_or_several():
    assert split_hosts("http://a:9200") == ["http://a:9200"]
    assert split_hosts(" http://a:9200, http://b:9200 ,") == ["http://a:9200", "http://b:9200"]
    with pytest.raises(ValueError):
        split_hosts(" , ")
    # one host: nothing to fail over to, exactly the single-node behaviour
    assert failover_options(["http://a:9200"]) == {"max_retries": 0, "retry_on_timeout": False, "retry_on_status": ()}
    assert failover_options(["a", "b", "c"])["max_retries"] == 2
