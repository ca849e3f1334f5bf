"""A consumer is live while its group has it as a member and its heartbeat is fresh."""

from indexing.core.membership import live

STATES = {"host:1:a": {"state": "ok"}, "host:2:b": {"state": "ok"}}


def test_a_heartbeat_without_membership_is_not_live():
    # host:2 was SIGKILLed: its heartbeat lasts 30 s, the broker dropped it after its session timeout.
    assert set(live(STATES, ["host:1:a"])) == {"host:1:a"}
    assert live(STATES, []) == {}


def test_a_member_without_a_heartbeat_is_not_live():
    assert set(live({"host:1:a": {}}, ["host:1:a", "host:9:z"])) == {"host:1:a"}


def test_without_an_answer_from_the_broker_heartbeats_decide():
    assert live(STATES, None) == STATES


def test_members_without_a_consumer_id_are_counted_by_the_broker():
    # Consumers started before they set their client.id are all "rdkafka": counted by how many are in the group.
    assert len(live(STATES, ["rdkafka", "rdkafka"])) == 2
    assert len(live(STATES, ["rdkafka"])) == 1
    assert set(live(STATES, ["host:2:b", "rdkafka"])) == {"host:1:a", "host:2:b"}
