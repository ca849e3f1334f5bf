"""The cutover guards: checks a new index must pass before an admin may approve it.

Each guard returns a ``GuardResult`` an operator can read: document-count
parity with the database (tombstones and canaries excluded), a reconciliation
sample with zero drift, and the blueprint's golden queries.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


from indexing.blueprints.indices import read_alias_filter
from indexing.blueprints.main_content import unchanged_main
from indexing.engines import SearchEngine
from indexing.models import PhysicalIndex
from indexing.blueprints.table_sources import blueprint_source

from .models import GoldenQuery


@dataclass
class GuardResult:
    name: str
    passed: bool
    detail: str
    data: dict

    def as_dict(self) -> dict:
        return asdict(self)


def count_parity(index: PhysicalIndex, engine: SearchEngine, attempts: int = 5, pause_s: float = 1.0,
                 name: str | None = None) -> GuardResult:
    """DB rows vs live documents; retried briefly since live writes keep both moving.
    ``name``: another physical index to count (the sidecar)."""
    source = blueprint_source(index.blueprint)
    query = read_alias_filter(index.blueprint)
    name = name or index.name
    for attempt in range(attempts):
        engine.refresh(name)
        db = source.model.objects.using(source.replica_alias).count()
        docs = engine.count(name, query)
        if db == docs:
            break
        if attempt < attempts - 1:
            time.sleep(pause_s)
    return GuardResult("count parity" if name == index.name else f"count parity: {name}", db == docs, f"database {db} rows, index {docs} documents",
                       {"database": db, "index": docs})


def reconciliation_sample(index: PhysicalIndex, engine: SearchEngine, size: int = 500,
                          name: str | None = None) -> GuardResult:
    """Random rows must be in the index at their version (or newer: a write may land meanwhile)."""
    source = blueprint_source(index.blueprint)
    name = name or index.name
    rows = list(source.model.objects.using(source.replica_alias).order_by("?").values_list("pk", source.version_field)[:size])
    engine.refresh(name)
    ids = [str(pk) for pk, _ in rows]
    hits = engine.search(name, {"size": len(ids) or 1, "version": True, "_source": ["deleted"],
                                      "query": {"ids": {"values": ids}}})["hits"]["hits"] if ids else []
    found = {h["_id"]: (h["_version"], h["_source"].get("deleted", False)) for h in hits}
    drift = []
    for pk, version in rows:
        doc = found.get(str(pk))
        if doc is None or doc[1] or doc[0] < version:
            # Re-read: the row may have changed or gone since it was sampled.
            current = source.model.objects.using(source.replica_alias).filter(pk=pk).values_list(source.version_field, flat=True).first()
            if current is not None and (doc is None or doc[1] or doc[0] < current):
                drift.append(str(pk))
    if drift:
        # A main index behind only on sidecar-only changes holds the rows' main content: not drift.
        unchanged = unchanged_main(index.blueprint, name, drift, engine, source.replica_alias)
        drift = [pk for pk in drift if pk not in unchanged]
    return GuardResult("reconciliation sample" if name == index.name else f"reconciliation sample: {name}", not drift,
                       f"{len(rows)} rows sampled, {len(drift)} drifted" + (f": {', '.join(drift[:10])}" if drift else ""),
                       {"sampled": len(rows), "drift": drift[:50]})


def golden_queries(index: PhysicalIndex, engine: SearchEngine) -> list[GuardResult]:
    """The blueprint's golden queries, and those its revision's files carry (without expected ids
    they only have to run)."""
    results = []
    read_filter = read_alias_filter(index.blueprint)
    from_files = [GoldenQuery(blueprint=index.blueprint, **{"top_k": 10, "min_overlap": 0.8, "expected_ids": [], **g})
                  for g in (index.revision.definition.get("golden_queries", []) if index.revision_id else [])]
    for golden in [*GoldenQuery.objects.filter(blueprint=index.blueprint), *from_files]:
        body = {"size": golden.top_k, "_source": False,
                "query": {"bool": {"must": [golden.query], "filter": [read_filter]}}}
        got = [h["_id"] for h in engine.search(index.name, body)["hits"]["hits"]]
        expected = [str(i) for i in golden.expected_ids]
        overlap = len(set(expected) & set(got)) / len(expected) if expected else 1.0
        results.append(GuardResult(f"golden query: {golden.name}", overlap >= golden.min_overlap,
                                   f"{overlap:.0%} of the expected ids in the top {golden.top_k} (need {golden.min_overlap:.0%})",
                                   {"expected": expected, "got": got, "overlap": overlap}))
    return results


def run_all(index: PhysicalIndex, engine: SearchEngine) -> list[GuardResult]:
    sidecar = [count_parity(index, engine, name=index.sidecar["name"]),
               reconciliation_sample(index, engine, name=index.sidecar["name"])] if index.sidecar else []
    return [count_parity(index, engine), reconciliation_sample(index, engine), *sidecar, *golden_queries(index, engine)]
