"""Load and bookkeeping shared by the drills that take a service away under writes."""

from __future__ import annotations

import random
import threading
import time

from catalog import services as catalog
from catalog.management.commands.seed_catalog import random_product
from indexing.core import stats
from indexing.engines import get_engine
from indexing.models import DeadLetter
from tests.helpers import db_state, db_thread, index_state

WRITES_PER_S = 25


class SteadyWrites:
    """Creates, updates and deletes through the catalog at a steady rate, in a thread of its own."""

    def __init__(self, seed: int, rate: float = WRITES_PER_S):
        self.rng = random.Random(seed)
        self.rate = rate
        self.deleted: dict[str, int] = {}
        self.ids: list[int] = []
        self.writes = 0
        self._stop = threading.Event()
        self._thread = db_thread(self._run)

    def _one(self):
        roll = self.rng.random()
        if roll < 0.3 or len(self.ids) < 20:
            self.ids.append(catalog.create_product(**random_product(self.rng)).pk)
        elif roll < 0.9:
            catalog.update_product(self.rng.choice(self.ids), price_minor=self.rng.randint(1, 100_000),
                                   available_qty=self.rng.randint(0, 50), title=random_product(self.rng)["title"])
        else:
            pid = self.ids.pop(self.rng.randrange(len(self.ids)))
            self.deleted[str(pid)] = catalog.delete_product(pid)
        self.writes += 1

    def _run(self):
        started = time.monotonic()
        while not self._stop.is_set():
            self._one()
            # paced from the start, so a slow moment is caught up and the rate holds on average
            self._stop.wait(max(0.0, started + self.writes / self.rate - time.monotonic()))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)


def drift(engine, index: str, deleted: dict[str, int]) -> int:
    """Documents that differ from the database: missing, extra, another version, or a wrong tombstone."""
    db = db_state()
    idx = index_state(engine, index)
    live = {k: v[0] for k, v in idx.items() if not v[1].get("deleted")}
    tombstones = {k: v[0] for k, v in idx.items() if v[1].get("deleted")}
    wrong = {k for k in set(db) | set(live) if db.get(k, (None,))[0] != live.get(k)}
    wrong |= {k for k in set(tombstones) | set(deleted) if tombstones.get(k) != deleted.get(k)}
    return len(wrong)


class Started:
    """When a drill started, and how many node failures the process's adapter had counted by then."""

    def __init__(self):
        self.at = time.monotonic()
        self.node_failures = get_engine().node_failures


def report(title: str, writes: SteadyWrites | None, blueprint, engine, index: str, started: Started, **extra) -> dict:
    counters = stats.counters(blueprint.name)
    figures = {
        "writes": writes.writes if writes else 0,
        "deletes": len(writes.deleted) if writes else 0,
        "indexed": counters.get("indexed", 0),
        "retried": counters.get("retried", 0),
        "not_ready": counters.get("not_ready", 0),
        "unavailable_waits": counters.get("unavailable_waits", 0),
        "stale": counters.get("stale", 0),
        "node_failovers": get_engine().node_failures - started.node_failures,
        "dead_letters": DeadLetter.objects.filter(blueprint=blueprint).count(),
        "drift": drift(engine, index, writes.deleted if writes else {}),
        **extra,
        "seconds": round(time.monotonic() - started.at, 1),
    }
    print(f"\n[{title}] " + " ".join(f"{k}={v}" for k, v in figures.items()))
    return figures
