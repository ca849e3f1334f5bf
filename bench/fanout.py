"""Fan-out benchmark: a brand rename, from its commit until all N products are searchable with the
new name, against a raw ``_bulk`` ceiling measured in the same run.

For each N (default 1,000 / 10,000 / 50,000): N products of one brand are created and loaded into
a live index directly; then the brand is renamed and the clock runs from the rename's commit
until a search for the new name counts N. The fan-out runs as in production — a ``fanout``
backfill whose two chunk workers emit outbox events, the relay publishes them, the indexing
consumer writes them with their versions — here in threads of this process, unthrottled. The
ceiling is the same N documents prebuilt as NDJSON and POSTed to ``_bulk`` over plain HTTP into a
scratch index with the same mapping (batches of 5,000, refresh at the end).

    .venv/bin/python bench/fanout.py [--sizes 1000,10000,50000]

Uses its own database (``SEARCHSYNC_BENCH_DB``, default searchsync_bench_fanout, dropped and
recreated), topics and groups. Each size also reports where the time went: the fan-out's outbox
rows all written (emitted), all published to Kafka by the relay (published), all searchable.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request

import harness
from harness import log, setup_django

harness.BENCH_DB = os.environ.get("SEARCHSYNC_BENCH_DB", "searchsync_bench_fanout")
harness.BENCH_DB_URL = f"postgres://searchsync:searchsync@127.0.0.1:5432/{harness.BENCH_DB}"


def raw_bulk(url: str, index: str, docs: list[dict]) -> float:
    """docs/s of prebuilt NDJSON POSTed to _bulk, refresh included."""
    bodies = []
    for start in range(0, len(docs), 5000):
        lines = []
        for doc in docs[start:start + 5000]:
            lines.append(json.dumps({"index": {"_index": index, "_id": doc["id"]}}))
            lines.append(json.dumps(doc))
        bodies.append(("\n".join(lines) + "\n").encode())
    started = time.monotonic()
    for body in bodies:
        request = urllib.request.Request(f"{url}/_bulk", data=body, method="POST",
                                         headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            assert not json.loads(answer.read())["errors"]
    urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"), timeout=60).read()
    return len(docs) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ts = time.strftime("%H%M%S")
    setup_django({"SEARCHSYNC_TOPIC_PREFIX": f"bench-fanout-{ts}.", "LOG_LEVEL": "WARNING",
                  "SEARCHSYNC_CONSUMER_GROUP_PREFIX": f"bench-fanout-{ts}-indexer."})
    from backfills import services as backfills
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index
    from indexing.pipeline.consumer import IndexingConsumer
    from indexing.engines import get_engine
    from indexing.outbox.relay import OutboxRelay

    backfills.enqueue = lambda *a, **k: None  # chunk workers are this process's threads
    engine = get_engine()
    blueprint = ensure_products_blueprint(name=f"bench-fanout-{ts}", sidecar={})
    live = ensure_live_index(blueprint, engine)
    scratch = f"bench-fanout-raw-{ts}"
    stop = threading.Event()

    relay, consumer = OutboxRelay(), IndexingConsumer(blueprint)
    threads = [closing(lambda: relay.run(stop)), closing(lambda: consumer.run(stop))]
    for thread in threads:
        thread.start()
    rows = []
    try:
        engine.create_index(scratch, live.settings, live.mappings)
        for n in sizes:
            rows.append(measure(engine, blueprint, live, scratch, n))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for index in [scratch] + [i.name for i in blueprint.indices.all()]:
            try:
                engine.delete_index(index)
            except Exception:  # already gone
                pass
    report(rows)
    return 0


def closing(target):
    """A daemon thread that closes its own database connections when ``target`` returns."""
    from django.db import connections

    def run():
        try:
            target()
        finally:
            connections.close_all()
    return threading.Thread(target=run, daemon=True)


def seed_brand(engine, live, n: int):
    """A brand with n products, indexed directly; the outbox emptied so only the rename's events flow."""
    from catalog import brands, services
    from catalog.documents import build_product, product_events
    from indexing.engines import BulkAction
    from indexing.models import OutboxEvent

    brand = brands.create_brand(tenant_id="bench", name=f"Brand {n}")
    ids = []
    for start in range(0, n, 5000):
        ids += [p.pk for p in services.create_products_bulk(
            [dict(tenant_id="bench", title=f"Item {i}", price_minor=i, available_qty=1, brand_id=brand.pk)
             for i in range(start, min(n, start + 5000))])]
    for start in range(0, n, 5000):
        events = product_events(ids[start:start + 5000])
        engine.bulk([BulkAction("index", live.name, e.entity_id, e.version, build_product(e)) for e in events])
    OutboxEvent.objects.all().delete()
    engine.refresh(live.name)
    return brand, ids


def measure(engine, blueprint, live, scratch: str, n: int) -> tuple:
    """Rename the brand, run the fan-out's two chunk workers, time it until all n are searchable; then the raw _bulk."""
    from backfills import services as backfills
    from backfills.models import Backfill
    from backfills.runner import ChunkRunner
    from catalog import brands
    from catalog.documents import build_product, product_events
    from indexing.models import OutboxEvent

    brand, ids = seed_brand(engine, live, n)
    new_name = f"Renamed {n}"
    brands.update_brand(brand.pk, name=new_name)
    committed = time.monotonic()
    fanout = Backfill.objects.filter(purpose=Backfill.Purpose.FANOUT).latest("created_at")
    backfills.set_rate(fanout, None)
    workers = [closing(ChunkRunner(fanout.pk).run) for _ in range(2)]
    for worker in workers:
        worker.start()
    query = {"term": {"brand": new_name}}
    emitted = published = None
    while engine.client.count(index=blueprint.read_alias, body={"query": query})["count"] < n:
        if emitted is None and not any(w.is_alive() for w in workers):
            emitted = time.monotonic() - committed
        if emitted is not None and published is None and not OutboxEvent.objects.filter(
                published_at__isnull=True).exists():
            published = time.monotonic() - committed
        time.sleep(0.05)
    elapsed = time.monotonic() - committed
    emitted = emitted or elapsed
    published = published or elapsed
    for worker in workers:
        worker.join()

    docs = [build_product(e) for start in range(0, n, 5000) for e in product_events(ids[start:start + 5000])]
    ceiling = raw_bulk(engine.hosts[0].rstrip("/"), scratch, docs)  # one node, as the baseline is defined
    log(f"N={n:,}: emitted {emitted:.1f} s, published {published:.1f} s, searchable {elapsed:.1f} s "
        f"after the rename, {n / elapsed:,.0f} docs/s; raw _bulk {ceiling:,.0f} docs/s")
    return n, elapsed, n / elapsed, ceiling, emitted, published


def report(rows: list[tuple]) -> None:
    print("\n| N | emitted | published | all searchable | fan-out docs/s | raw _bulk docs/s | share of ceiling |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, elapsed, rate, ceiling, emitted, published in rows:
        print(f"| {n:,} | {emitted:.1f} s | {published:.1f} s | {elapsed:.1f} s | {rate:,.0f} | {ceiling:,.0f} "
              f"| {100 * rate / ceiling:.0f} % |")


if __name__ == "__main__":
    raise SystemExit(main())
