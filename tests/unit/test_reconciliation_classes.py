"""Reconciliation's drift classes: which rows are missing or stale, which documents orphaned or expired."""

from datetime import datetime, timedelta, timezone as dt_timezone

from indexing.reconciliation import IndexDoc, classify_docs, classify_rows


def test_classification_rules():
    now = datetime.now(dt_timezone.utc)
    docs = {"1": IndexDoc("1", 3, False, now, "t"), "2": IndexDoc("2", 2, False, now, "t"),
            "3": IndexDoc("3", 9, True, now, "t"), "5": IndexDoc("5", 4, False, now, "t")}
    # Row 1 matches, row 2 is ahead of its document, row 3 has only a tombstone, row 4 nothing;
    # a document ahead of its row (5) is neither: the row's own event is what is late.
    assert classify_rows([("1", 3), ("2", 5), ("3", 4), ("4", 1), ("5", 2)], docs) == (["3", "4"], ["2"])
    old, recent = now - timedelta(days=8), now - timedelta(hours=1)
    index_docs = [IndexDoc("7", 1, False, now, "t"), IndexDoc("8", 2, True, old, "t"), IndexDoc("9", 2, True, recent, "t"),
                  IndexDoc("10", 2, True, old, "t"), IndexDoc("11", 1, False, now, "t")]
    orphaned, expired = classify_docs(index_docs, existing={"10", "11"}, expire_before=now - timedelta(days=7))
    assert [d.id for d in orphaned] == ["7"] and [d.id for d in expired] == ["8"]
