import json

from indexing.engines import BulkAction
from indexing.engines.base import SearchEngine, bulk_body, bulk_chunks


def lines(body: bytes) -> list[dict]:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().splitlines()]


def test_an_index_carries_its_source_and_a_delete_none():
    body = bulk_body([BulkAction("index", "products_v1", "7", 3, {"title": "Lamp", "price_minor": 100}),
                      BulkAction("delete", "products_v1", "8", 4)])
    assert lines(body) == [
        {"index": {"_index": "products_v1", "_id": "7", "version": 3, "version_type": "external"}},
        {"title": "Lamp", "price_minor": 100},
        {"delete": {"_index": "products_v1", "_id": "8", "version": 4, "version_type": "external"}},
    ]


def test_prebuilt_source_bytes_are_sent_as_they_are():
    # The writer serialises once, for the size check; the body must carry exactly those bytes.
    action = BulkAction("index", "i", "1", 1, {"ignored": True}, b'{"title":"Cr\xc3\xa8me"}')
    assert bulk_body([action]).split(b"\n")[1] == b'{"title":"Cr\xc3\xa8me"}'


def test_integers_beyond_64_bits_still_serialise():
    (_, source) = lines(bulk_body([BulkAction("index", "i", "1", 1, {"n": 2 ** 70})]))
    assert source == {"n": 2 ** 70}


def test_item_answers_keep_error_type_and_cause():
    action = BulkAction("index", "i", "1", 1, {})
    ok = SearchEngine._item_result(action, {"index": {"status": 201}})
    assert (ok.status, ok.error_type, ok.ok) == (201, None, True)
    bad = SearchEngine._item_result(action, {"index": {"status": 400, "error": {
        "type": "mapper_parsing_exception", "reason": "failed to parse field [price_minor]",
        "caused_by": {"reason": "For input string: \"x\""}}}})
    assert (bad.status, bad.error_type) == (400, "mapper_parsing_exception")
    assert bad.reason == 'failed to parse field [price_minor]: For input string: "x"'
    gone = SearchEngine._item_result(BulkAction("delete", "i", "1", 2), {"delete": {"status": 404}})
    assert gone.ok


def sized(doc_id: str, n: int) -> BulkAction:
    return BulkAction("index", "i", doc_id, 1, None, b"x" * n)


def test_requests_are_bounded_by_count_and_by_bytes():
    actions = [sized(str(i), 900) for i in range(10)]
    assert [len(c) for c in bulk_chunks(actions, chunk_size=4)] == [4, 4, 2]
    # 1,000 bytes an action with its line: three fit under 3,500, a fourth would not.
    assert [len(c) for c in bulk_chunks(actions, chunk_size=100, max_bytes=3500)] == [3, 3, 3, 1]
    assert [a.id for c in bulk_chunks(actions, 100, 3500) for a in c] == [str(i) for i in range(10)]


def test_an_action_larger_than_the_byte_bound_goes_alone_not_nowhere():
    actions = [sized("small", 10), sized("huge", 50_000), sized("after", 10)]
    assert [[a.id for a in c] for c in bulk_chunks(actions, 100, max_bytes=1000)] == [["small"], ["huge"], ["after"]]
