"""A search-node outage is not silent: while the node is stopped the consumer logs that indexing is
paused for it and how much waits, and the overview says since when; both clear once it is back.

Stops the node under test like the failure drills (make test runs them on a node of its own)."""

import logging
import re

import pytest

from catalog import services
from indexing.core import pauses
from indexing.pipeline import outage
from tests.helpers import pipeline, start_search_node, stop_search_node, wait_until

pytestmark = pytest.mark.slow

PAUSED = "Indexing is paused for the search node since"


def overview(client) -> str:
    response = client.get("/partials/indices/")
    assert response.status_code == 200
    return response.content.decode()


def card(page: str, blueprint) -> str:
    start = page.index(f'data-index="{blueprint.name}"')
    end = page.find("</article>", start)
    return page[start:end]


def waiting_on(card_html: str) -> int:
    found = re.search(r'data-waiting="(\d+)"', card_html)
    return int(found.group(1)) if found else 0


def test_an_outage_is_logged_and_shown_until_the_node_answers_again(products_blueprint, engine, admin_client,
                                                                    caplog, monkeypatch):
    monkeypatch.setattr(outage, "REPEAT_S", 3.0)  # a minute in production: here a few seconds
    caplog.set_level(logging.INFO, logger="indexing.pipeline.consumer")
    name, index = products_blueprint.name, products_blueprint.live_index().name
    with pipeline(products_blueprint):
        first = services.create_product(tenant_id="t", title="Before", price_minor=1, available_qty=1)
        wait_until(lambda: engine.get(index, str(first.pk)), message="indexed before the outage")
        assert PAUSED not in card(overview(admin_client), products_blueprint)

        stop_search_node()
        try:
            ids = [services.create_product(tenant_id="t", title=f"During {i}", price_minor=1, available_qty=1).pk
                   for i in range(5)]
            pause = wait_until(lambda: pauses.current(name), timeout=90, message="the pause recorded")
            # The five writes reach Kafka over one or more relay rounds; the card's count follows them.
            shown = wait_until(lambda: (lambda c: c if PAUSED in c and waiting_on(c) >= 5 else None)(
                card(overview(admin_client), products_blueprint)), timeout=60,
                message="the overview showing the pause and the five writes waiting in Kafka")
            assert f'data-paused-since="{pause.since:.0f}"' in shown
            # The log: a WARNING when it started, repeated while it lasts, each with the waiting count.
            wait_until(lambda: sum("is still paused" in r.getMessage() for r in caplog.records) >= 1, timeout=60,
                       message="the repeated warning")
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                        and "paused for the search node" in r.getMessage()]
            assert f"{name}: indexing is paused for the search node since" in warnings[0], warnings
            assert re.search(r"; \d+ events waiting in Kafka", warnings[0]), warnings[0]
        finally:
            start_search_node()

        wait_until(lambda: all(engine.get(index, str(pid)) for pid in ids), timeout=180,
                   message="the writes indexed after the outage")
        wait_until(lambda: pauses.current(name) is None, timeout=60, message="the pause cleared")
        assert PAUSED not in card(overview(admin_client), products_blueprint)
        wait_until(lambda: any(r.levelno == logging.INFO and "indexing resumed after" in r.getMessage()
                               for r in caplog.records), timeout=30, message="the end logged")
