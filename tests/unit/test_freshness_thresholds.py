"""Each index is held to its own refresh interval plus the budget, unless its blueprint sets a threshold."""

import pytest

from indexing.blueprints.sidecar import InvalidSidecar, SidecarSpec, check
from indexing.observability.thresholds import event_threshold_ms, index_threshold, index_thresholds

BUDGET = 2000


def late(threshold, lag_ms):
    return lag_ms > threshold.threshold_ms


def test_a_title_change_taking_30_s_on_a_30_s_main_index_is_on_time():
    main = index_threshold("products_v3", "canary", "30s", BUDGET)
    assert main.threshold_ms == 32_000 and not main.overridden
    assert not late(main, 30_000)
    assert late(main, 33_000)


def test_a_price_change_taking_5_s_on_a_1_s_sidecar_is_late():
    side = index_threshold("products_v3_sidecar", "sidecar", "1s", BUDGET)
    assert side.threshold_ms == 3000
    assert late(side, 5000)
    assert not late(side, 2500)


@pytest.mark.parametrize("interval, expected", [
    (None, 3000),  # the engines' default refresh: 1 s
    ("500ms", 2500), ("2m", 122_000), ("-1", 2000),  # refresh off: only explicit refreshes, the budget alone
])
def test_the_refresh_interval_is_read_as_the_engines_do(interval, expected):
    assert index_threshold("i", "canary", interval, BUDGET).threshold_ms == expected


def test_a_blueprint_sets_each_index_s_threshold_outright():
    main, side = index_thresholds(main_index="p_v1", main_refresh_interval="30s", budget_ms=BUDGET,
                                  main_override_ms=45_000, sidecar_index="p_v1_sidecar",
                                  sidecar_refresh_interval="1s", sidecar_override_ms=1500)
    assert (main.index, main.source, main.threshold_ms, main.overridden) == ("p_v1", "canary", 45_000, True)
    assert (side.index, side.source, side.threshold_ms, side.overridden) == ("p_v1_sidecar", "sidecar", 1500, True)
    assert main.rule == "45000 ms set in the blueprint"
    # Only the main index overridden: the sidecar keeps the derived rule.
    _, side = index_thresholds(main_index="p_v1", main_refresh_interval="30s", budget_ms=BUDGET,
                               main_override_ms=45_000, sidecar_index="p_v1_sidecar", sidecar_refresh_interval="1s")
    assert side.threshold_ms == 3000 and side.rule == "refresh 1000 ms + budget 2000 ms"


def test_without_a_sidecar_there_is_one_threshold():
    assert [t.index for t in index_thresholds(main_index="p_v1", main_refresh_interval="1s", budget_ms=BUDGET)] == ["p_v1"]


def test_events_get_what_the_tightest_index_leaves_after_its_refresh():
    indices = index_thresholds(main_index="p_v1", main_refresh_interval="30s", budget_ms=BUDGET,
                               sidecar_index="p_v1_sidecar", sidecar_refresh_interval="1s")
    assert event_threshold_ms(indices) == 2000
    tight = index_thresholds(main_index="p_v1", main_refresh_interval="30s", budget_ms=BUDGET,
                             sidecar_index="p_v1_sidecar", sidecar_refresh_interval="1s", sidecar_override_ms=1800)
    assert event_threshold_ms(tight) == 800
    # A threshold below the refresh interval leaves nothing: every event is late.
    assert event_threshold_ms(index_thresholds(main_index="p", main_refresh_interval="5s", budget_ms=BUDGET,
                                               main_override_ms=1000)) == 0


def test_a_sidecar_threshold_must_be_a_positive_whole_number():
    mappings = {"properties": {"price_minor": {"type": "long"}}}
    assert SidecarSpec.of({"fields": ["price_minor"], "freshness_threshold_ms": 1500}).freshness_threshold_ms == 1500
    check(SidecarSpec.of({"fields": ["price_minor"], "freshness_threshold_ms": 1500}), mappings)
    for bad in (0, -5, "2s", 1.5, True):
        with pytest.raises(InvalidSidecar, match="freshness_threshold_ms"):
            check(SidecarSpec.of({"fields": ["price_minor"], "freshness_threshold_ms": bad}), mappings)
