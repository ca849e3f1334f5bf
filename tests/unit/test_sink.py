"""Per-item retry rules of the bulk sink: 409 is final at once, 5xx retried within a budget, 429 without
using it up, permanent errors dead-lettered with a typed reason."""

from indexing.engines import BulkAction, BulkItemResult
from indexing.models import DeadLetter
from indexing.sink import BulkSink


class ScriptedEngine:
    """Answers each bulk round from a script: {doc id: [status per round]}."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.rounds = []

    def bulk(self, actions, chunk_size):
        actions = list(actions)
        self.rounds.append([a.id for a in actions])
        answers = []
        for a in actions:
            status = self.script[a.id].pop(0)
            error = {400: "mapper_parsing_exception", 409: "version_conflict_engine_exception"}.get(status)
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
    engine = ScriptedEngine({"a": [503, 503, 201], "b": [503, 503, 503]})
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
