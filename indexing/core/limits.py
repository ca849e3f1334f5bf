"""Bounds of what operators and API clients may ask for.

Each keeps a request from overflowing a column (rows/s is a PostgreSQL integer)
or from running for minutes inside one web request; error messages name them.
"""

# Rows per second of a backfill or reconciliation throttle; far above what one cluster indexes.
MAX_ROWS_PER_SECOND = 1_000_000
# Ids in one dead-letter replay/discard request; act on more with all_matching and filters.
MAX_IDS_PER_REQUEST = 1_000
# Largest page of any list endpoint (?limit=).
MAX_PAGE_SIZE = 1_000
