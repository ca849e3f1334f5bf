"""Interpreter settings for the processes that stream events (consumers, relay, backfill workers).

The garbage collector. A batch of 2,000 events allocates tens of thousands of short-lived objects.
With CPython's default thresholds (700 allocations) that is dozens of collections per batch, and
each full one walks the whole heap: Django, the clients and every module loaded at start. Reference
counting frees nearly all of a batch's objects at once anyway; the collector is there for cycles
only. So the start-up heap is frozen out of the walks and the first generation collected every
50,000 allocations instead of 700. On the consumer's per-batch path this took 0.060 to 0.037
CPU-seconds per 1,000 events (``bench/pipeline_freshness.py`` measures the whole process).

The GIL's switch interval. A consumer's main thread prepares the next batch in Python while a bulk
thread waits on the node; the moment the answer comes, the bulk thread needs the GIL to read it and
pass the gate, and the next one to send its request. With CPython's 5 ms interval each of those
steps could wait up to 5 ms behind the preparing thread, and the node idled meanwhile.
``GIL_SWITCH_INTERVAL_MS`` (0.5 ms) shortens that wait; the consumer's CPU per event did not
move (``bench/README.md``, the pinned consumer).
"""

from __future__ import annotations

import gc
import sys

from indexing.conf import searchsync_settings

FIRST_GENERATION_THRESHOLD = 50_000


def tune_for_streaming() -> None:
    """Call once the process has loaded what it will keep (after Django's set-up, before the loop)."""
    gc.collect()
    gc.freeze()
    first, second, third = gc.get_threshold()
    gc.set_threshold(max(first, FIRST_GENERATION_THRESHOLD), second, third)
    interval_ms = searchsync_settings.GIL_SWITCH_INTERVAL_MS
    if interval_ms > 0:  # 0: the interpreter's own
        sys.setswitchinterval(interval_ms / 1000)
