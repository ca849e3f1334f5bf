"""Per-item retry rules of the bulk sink: 409 is final at once, 5xx retried within a budget, 429 and
"cluster not ready" (503, unavailable shards, no cluster manager) without using it up, permanent
errors dead-lettered with a typed reason."""

from indexing.engines import BulkAction, BulkItemResult
from indexing.models import DeadLetter
from indexing.pipeline.bulk_sink import BulkSink


class ScriptedEngine:
    """Answers each bulk round from a script: {doc id: [status per round]}."""

    def __init__(self, script, error_types=None):
        self.script = {k: list(v) for k, v in script.items()}
        self.error_types = error_types or {}
        self.rounds = []

    def bulk(self, actions, chunk_size, body=None, max_bytes=None, gate=None):
        actions = list(actions)
        self.rounds.append([a.id for a in actions])
        answers = []
        for a in actions:
            status = self.script[a.id].pop(0)
            error = self.error_types.get(status) or {400: "mapper_parsing_exception",
                                                     409: "version_conflict_engine_exception"}.get(status)
            answers.append(BulkItemResult(a, status, error, None if status < 300 else "no"))
        return answers


def sink(engine, retries=2):
    waits = []
    s = BulkSink(engine, max_retries=retries, base_s=0.001, cap_s=0.002, chunk_size=100, wait=waits.append)
    return s, waits


def actions(*ids):
    return [BulkAction("index", "i", doc_id, 1, {"id": doc_id}) for doc_id in ids]


def test_stale_is_final_at_once_and_never_retried():
    engine = ScriptedEngine({"a": [201], "b": [409]})
    result = sink(engine)[0].write(actions("a", "b"))
    assert [a.id for a in result.indexed] == ["a"] and [a.id for a in result.stale] == ["b"]
    assert engine.rounds == [["a", "b"]] and result.retried == 0


def test_transient_errors_retry_within_the_budget_then_dead_letter():
    engine = ScriptedEngine({"a": [502, 500, 201], "b": [500, 502, 504]})
    result = sink(engine, retries=2)[0].write(actions("a", "b"))
    assert [a.id for a in result.indexed] == ["a"]
    assert [(f.action.id, f.reason) for f in result.failed] == [("b", DeadLetter.Reason.RETRIES_EXHAUSTED)]
    assert engine.rounds == [["a", "b"], ["a", "b"], ["a", "b"]]


def test_429_does_not_use_up_the_retry_budget():
    engine = ScriptedEngine({"a": [429, 429, 429, 429, 201]})
    s, waits = sink(engine, retries=1)
    result = s.write(actions("a"))
    assert [a.id for a in result.indexed] == ["a"] and result.rejected_429 == 4 and len(waits) == 4


def test_permanent_errors_are_typed_dead_letter_reasons():
    engine = ScriptedEngine({"a": [400], "b": [413]})
    result = sink(engine)[0].write(actions("a", "b"))
    assert {f.action.id: f.reason for f in result.failed} == {"a": DeadLetter.Reason.MAPPING_REJECTED,
                                                             "b": DeadLetter.Reason.TOO_LARGE}


def test_cluster_not_ready_is_retried_without_using_up_the_budget():
    # A node away: 503 unavailable_shards_exception many times over, then the replica took over.
    engine = ScriptedEngine({"a": [503] * 6 + [201], "b": [201]}, {503: "unavailable_shards_exception"})
    s, waits = sink(engine, retries=1)
    result = s.write(actions("a", "b"))
    assert [a.id for a in result.indexed] == ["b", "a"] and not result.failed
    assert result.not_ready == 6 and result.retried == 6 and len(waits) == 6


def test_not_ready_error_types_count_whatever_their_status():
    # A coordinating node that lost its connection to the primary's node answers 500 with the cause.
    engine = ScriptedEngine({"a": [500, 500, 500, 201]}, {500: "node_not_connected_exception"})
    notified = []
    s = BulkSink(engine, max_retries=1, base_s=0.001, cap_s=0.002, chunk_size=100, wait=lambda d: None,
                 on_not_ready=notified.append)
    result = s.write(actions("a"))
    assert [a.id for a in result.indexed] == ["a"] and result.not_ready == 3 and notified == [1, 1, 1]


def test_a_plain_500_still_uses_the_budget():
    engine = ScriptedEngine({"a": [500, 500]}, {500: "null_pointer_exception"})
    result = sink(engine, retries=1)[0].write(actions("a"))
    assert [(f.action.id, f.reason) for f in result.failed] == [("a", DeadLetter.Reason.RETRIES_EXHAUSTED)]
    assert result.not_ready == 0
