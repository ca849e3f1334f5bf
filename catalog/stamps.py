"""Change stamps and the locks that make them mean something.

A product document is built from its product row, its brand row and its category's ancestors.
Its version is the highest ``change_stamp`` among them. For that to order every state of a
document, two writes of rows one document depends on must take their stamps in the order they
commit. The locks below give that order:

- a product write locks its product row, then its old and new brand and category chains
  ``FOR SHARE``, and only then takes its stamp: a brand or category write (``FOR UPDATE``) on one
  of those rows waits for it, or it waits for that write to commit;
- brand and category writes (rare) take one transaction-scoped advisory lock before their row
  lock and stamp, so they are ordered among themselves too.
"""

from __future__ import annotations

from django.db import connection

from .models import CHANGE_SEQUENCE

# Any constant: the advisory lock key brand and category writes share.
DEPENDENCY_WRITE_LOCK = 0x5EA5C_57A3


def next_stamps(count: int = 1) -> list[int]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT nextval('{CHANGE_SEQUENCE}') FROM generate_series(1, %s)", [count])
        return [row[0] for row in cur.fetchall()]


def next_stamp() -> int:
    return next_stamps(1)[0]


def lock_dependency_writes() -> None:
    """Order brand and category writes among themselves (held until commit)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [DEPENDENCY_WRITE_LOCK])


def share_lock_dependencies(brand_ids=(), category_ids=()) -> None:
    """Lock brands and every ancestor of the categories ``FOR SHARE`` until commit.

    Walked level by level so each step sees the committed parent of a category moved meanwhile."""
    brand_ids = sorted({b for b in brand_ids if b})
    with connection.cursor() as cur:
        if brand_ids:
            cur.execute("SELECT id FROM catalog_brand WHERE id = ANY(%s) ORDER BY id FOR SHARE", [brand_ids])
        level, seen = sorted({c for c in category_ids if c}), set()
        while level:
            seen.update(level)
            cur.execute("SELECT parent_id FROM catalog_category WHERE id = ANY(%s) ORDER BY id FOR SHARE", [level])
            level = sorted({row[0] for row in cur.fetchall() if row[0] and row[0] not in seen})
