"""The typed settings object: declared once, parsed from the environment, overridable, documented."""

import re
from pathlib import Path

import pytest
from django.test import override_settings

from indexing.conf import DECLARED, from_environment, searchsync_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_environment_values_are_parsed_to_their_declared_types():
    values = from_environment({"SEARCHSYNC_BATCH_SIZE": "500", "SEARCHSYNC_RELAY_POLL_S": "0.25",
                               "SEARCHSYNC_CDC_BLUEPRINTS": "products, orders,", "SEARCHSYNC_INDEX_REPLICAS": "1"})
    assert values["BATCH_SIZE"] == 500 and values["RELAY_POLL_S"] == 0.25
    assert values["CDC_BLUEPRINTS"] == ["products", "orders"] and values["INDEX_REPLICAS"] == 1
    assert values["TOPIC_PREFIX"] == "searchsync."  # absent: the declared default


def test_a_bad_number_in_the_environment_fails_at_start():
    with pytest.raises(ValueError):
        from_environment({"SEARCHSYNC_BATCH_SIZE": "many"})


def test_attributes_follow_overrides_and_fall_back_to_defaults():
    with override_settings(SEARCHSYNC={"BATCH_SIZE": 7}):
        assert searchsync_settings.BATCH_SIZE == 7
        assert searchsync_settings.RELAY_BATCH_SIZE == 500
    with pytest.raises(AttributeError, match="not a searchsync setting"):
        searchsync_settings.BATCH_SIZ


def test_every_setting_is_in_the_readme_configuration_table():
    documented = set(re.findall(r"`(SEARCHSYNC_[A-Z0-9_]+)`", README))
    missing = [s.env for s in DECLARED if s.env not in documented]
    assert not missing, f"README's Configuration table lacks {missing}"


def test_a_removed_setting_still_set_fails_at_start_and_says_what_replaced_it():
    with pytest.raises(ValueError, match="SEARCHSYNC_FRESHNESS_BUDGET_MS"):
        from_environment({"SEARCHSYNC_FRESHNESS_THRESHOLD_MS": "2000"})
