"""The document inspector against the real stack: one product in each state an operator meets —
in sync, waiting in the outbox, dead-lettered, deleted, missing from the index — through the API,
plus re-indexing it (operators only, audited) and bad input."""

import json

import pytest
from django.db import transaction
from django.utils import timezone

from catalog import services
from indexing.core.partitioning import partition_for
from indexing.models import DeadLetter, OutboxEvent
from indexing.observability.inspector import clean_id, inspect
from tests.helpers import pipeline, wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def url(blueprint, entity_id, suffix=""):
    return f"/api/v1/documents/{blueprint.name}/{entity_id}/{suffix}"


def fetch(api, blueprint, entity_id) -> dict:
    answer = api.get(url(blueprint, entity_id))
    assert answer.status_code == 200, answer.content
    return answer.json()


def in_state(api, blueprint, entity_id, state):
    return wait_until(lambda: (doc := fetch(api, blueprint, entity_id))["state"] == state and doc,
                      timeout=60, message=f"document {entity_id} {state}")


def product(**fields):
    return services.create_product(**{"tenant_id": "acme", "title": "Chai", "price_minor": 450,
                                      "available_qty": 3, **fields})


def test_in_sync_every_stage_agrees(products_blueprint, operator_api):
    p = product()
    with pipeline(products_blueprint):
        doc = in_state(operator_api, products_blueprint, p.pk, "in_sync")
    assert set(doc) >= {"database", "outbox", "stream", "index", "dead_letters", "verdict", "audit"}
    version = doc["database"]["version"]
    assert doc["database"]["exists"] and doc["database"]["tenant_id"] == "acme" and doc["database"]["updated_at"]
    assert doc["outbox"]["rows"][0]["state"] == "published" and doc["outbox"]["rows"][0]["version"] == version
    [copy] = doc["index"]
    assert (copy["index"], copy["version"], copy["deleted"], copy["searchable"]) == (
        products_blueprint.live_index().name, version, False, True)
    stream = doc["stream"]
    assert stream["topic"] == products_blueprint.topic and stream["partition"] == partition_for(str(p.pk), stream["partitions"])
    assert stream["lag"] == 0 and stream["committed_offset"] == stream["end_offset"]
    assert doc["verdict"].startswith("in sync") and f"version {version}" in doc["verdict"]


def test_waiting_in_the_outbox_while_no_relay_runs(products_blueprint, operator_api, capsys):
    p = product()
    doc = fetch(operator_api, products_blueprint, p.pk)
    with capsys.disabled():
        print("\ninspector, event waiting in the outbox:\n" + json.dumps(doc, indent=2))
    assert doc["state"] == "waiting_in_outbox"
    [row] = doc["outbox"]["rows"]
    assert row["state"] == "waiting" and row["published_at"] is None and row["version"] == doc["database"]["version"]
    assert doc["index"][0]["found"] is False and doc["index"][0]["searchable"] is False
    assert "does not hold it" in doc["verdict"] and "is waiting in the outbox since" in doc["verdict"]


def test_dead_lettered_by_the_consumer(products_blueprint, operator_api):
    p = product()
    # The product's event replaced by one its schema refuses, at the same version: the consumer dead-letters it.
    OutboxEvent.objects.filter(aggregate_id=str(p.pk)).delete()
    with transaction.atomic():
        services_version = inspect(products_blueprint, str(p.pk)).database.version
        from indexing.outbox.emit import emit

        emit(aggregate_type=products_blueprint.aggregate_type, aggregate_id=p.pk, version=services_version,
             payload={"title": 42}, tenant_id="acme")
    with pipeline(products_blueprint):
        wait_until(lambda: DeadLetter.objects.filter(entity_id=str(p.pk)).exists(), message="dead letter")
        doc = in_state(operator_api, products_blueprint, p.pk, "dead_lettered")
    [letter] = doc["dead_letters"]
    assert letter["reason"] == "schema_invalid" and letter["status"] == "pending"
    assert letter["console_url"].endswith(f"/dead-letters/{letter['id']}/")
    assert letter["url"].endswith(f"/api/v1/dead-letters/{letter['id']}/")
    assert f"dead letter #{letter['id']}" in doc["verdict"] and "schema_invalid" in doc["verdict"]


def test_deleted_product_is_a_tombstone_and_in_sync(products_blueprint, operator_api):
    p = product()
    with pipeline(products_blueprint):
        in_state(operator_api, products_blueprint, p.pk, "in_sync")
        tombstone = services.delete_product(p.pk)
        doc = in_state(operator_api, products_blueprint, p.pk, "deleted")
    assert doc["database"]["exists"] is False
    [copy] = doc["index"]
    assert copy["found"] and copy["deleted"] and copy["version"] == tombstone and copy["searchable"] is False
    assert doc["outbox"]["rows"][0]["event_type"].endswith("_DELETE")
    assert "tombstones" in doc["verdict"]


def test_missing_from_the_index_is_repaired_by_an_audited_reindex(products_blueprint, operator_api, client,
                                                                  django_user_model):
    p = product()
    # An event lost on its way: its outbox row is marked published but never reached Kafka. (A document
    # deleted from the index by hand would leave the engine's own delete tombstone, which outranks
    # a re-index at the row's version until index.gc_deletes expires it.)
    OutboxEvent.objects.filter(aggregate_id=str(p.pk)).update(published_at=timezone.now())
    with pipeline(products_blueprint):
        doc = in_state(operator_api, products_blueprint, p.pk, "missing")
        assert "re-index this document" in doc["verdict"]

        # Read-only users see the document but cannot re-index it.
        django_user_model.objects.create_user("viewer", password="x")
        client.force_login(django_user_model.objects.get(username="viewer"))
        assert client.get(url(products_blueprint, p.pk)).status_code == 200
        assert client.post(url(products_blueprint, p.pk, "reindex/")).status_code == 403

        answer = operator_api.post(url(products_blueprint, p.pk, "reindex/"))
        assert answer.status_code == 202, answer.content
        assert answer.json()["event"] == "upsert" and answer.json()["via"] == "outbox"
        assert answer.json()["version"] == doc["database"]["version"]
        doc = in_state(operator_api, products_blueprint, p.pk, "in_sync")
    assert [(e["action"], e["actor"], e["target"]) for e in doc["audit"]] == [
        ("document.reindex", "api-operator", f"document:{products_blueprint.name}/{p.pk}")]


def test_reindex_of_a_row_that_never_existed_is_refused(products_blueprint, operator_api):
    answer = operator_api.post(url(products_blueprint, 987654321, "reindex/"))
    assert answer.status_code == 409 and "nothing to re-index" in answer.json()["detail"]


def test_bad_input_is_a_clear_400_or_404(products_blueprint, operator_api):
    answer = operator_api.get("/api/v1/documents/no-such-blueprint/1/")
    assert answer.status_code == 404
    for bad in ("abc", "99999999999999999999999", "1.5"):
        answer = operator_api.get(url(products_blueprint, bad))
        assert answer.status_code == 400, (bad, answer.content)
        assert "id" in answer.json()
    assert operator_api.post(url(products_blueprint, "abc", "reindex/")).status_code == 400
    # A well-formed id nobody wrote: answered, not an error.
    doc = fetch(operator_api, products_blueprint, 987654321)
    assert doc["state"] == "deleted" and doc["database"]["exists"] is False and not doc["outbox"]["rows"]
    assert clean_id(products_blueprint, " 42 ") == "42"


def test_console_page_and_lookup(products_blueprint, admin_client):
    p = product()
    page = admin_client.get(f"/documents/?blueprint={products_blueprint.name}&id={p.pk}")
    assert page.status_code == 302 and page["Location"] == f"/documents/{products_blueprint.name}/{p.pk}/"
    html = admin_client.get(page["Location"]).content.decode()
    assert 'data-state="waiting_in_outbox"' in html and 'data-outbox-state="waiting"' in html
    assert admin_client.get("/documents/?blueprint=nope&id=1").status_code == 404
    assert admin_client.get(f"/documents/?blueprint={products_blueprint.name}&id=abc").status_code == 400
    assert admin_client.get(f"/documents/{products_blueprint.name}/abc/").status_code == 400
    assert admin_client.get("/documents/nope/1/").status_code == 404


def test_the_computed_partition_is_where_the_producer_puts_the_key(isolated_pipeline, unique):
    """The inspector names an entity's partition without reading the topic: murmur2 as the producers do."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings

    from indexing.core.producer import build_producer

    topic = f"test-{unique}.partitions"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    admin.create_topics([NewTopic(topic, 7, 1)])[topic].result(30)
    try:
        producer, delivered = build_producer(), {}
        keys = [str(i) for i in range(300)] + ["sku-ü-42", "a", "ab", "abc", "12345678901234567890"]
        for key in keys:
            producer.produce(topic, key=key.encode(), value=b"{}",
                             on_delivery=lambda err, msg, key=key: delivered.__setitem__(key, msg.partition()))
        assert producer.flush(30) == 0
        assert {k: partition_for(k, 7) for k in keys} == delivered
    finally:
        admin.delete_topics([topic])
