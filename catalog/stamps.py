"""Change stamps and the locks that make them mean something.

A product document is built from its product row, its brand row and its category's ancestors.
Its version is the highest ``change_stamp`` among them. For that to order every state of a
document, two writes of rows one document depends on must take their stamps in the order they
commit. The locks below give that order:

- a product write locks its product row, then its old and new brand and category chains
  ``FOR SHARE``, and only then takes its stamp: a brand or category write (``FOR UPDATE``) on one
  of those rows waits for it, or it waits for that write to commit;
- a brand or category write takes a transaction-scoped advisory lock before its row lock and
  stamp: shared for brands, exclusive for categories. A category write is thus ordered with every
  other brand or category write — a document depends on a chain of categories and a brand, and
  two such rows written concurrently could otherwise commit against their stamps' order. Two
  brand writes need no order between them: a document shows one brand, two writes of one brand
  meet on its row lock, and a product moving between brands locks both.
"""

from __future__ import annotations

from django.db import connection

# One database-wide change sequence: every write of a product, brand or category takes the next
# value. A product document's version is the highest stamp among the rows it is built from.
CHANGE_SEQUENCE = "catalog_change_stamp"

# Any constant: the advisory lock key brand and category writes share.
DEPENDENCY_WRITE_LOCK = 0x5EA5C_57A3


def next_stamps(count: int = 1) -> list[int]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT nextval('{CHANGE_SEQUENCE}') FROM generate_series(1, %s)", [count])
        return [row[0] for row in cur.fetchall()]


def next_stamp() -> int:
    return next_stamps(1)[0]


def lock_brand_writes() -> None:
    """Order a brand write with category writes (held until commit); brand writes run side by side."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [DEPENDENCY_WRITE_LOCK])


def lock_category_writes() -> None:
    """Order a category write with every brand and category write (held until commit)."""
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
