"""Backfill of a blueprint declared in files against the model-backed products blueprint, same run.

    .venv/bin/python bench/declared_backfill.py [--rows 50000] [--repeat 3]

Seeds the same number of products (Django models, documents joining brand and category) and
orders (a plain table, the examples/orders shape, its blueprint declared in files), then
backfills a new index of each, alternating, ``--repeat`` times: one backfill worker in this
process, the throttle off, page and chunk sizes the same for both. Prints rows/s per run and
the median ratio declared / model-backed. Uses its own database (``SEARCHSYNC_BENCH_DB``,
default searchsync_bench_declared, dropped and recreated) and deletes its indices at the end.
Figures only: never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import ROOT, log  # noqa: E402

harness.BENCH_DB = os.environ.get("SEARCHSYNC_BENCH_DB", "searchsync_bench_declared")
harness.BENCH_DB_URL = f"postgres://searchsync:searchsync@127.0.0.1:5432/{harness.BENCH_DB}"


def seed(rows: int) -> None:
    from django.db import connection

    from catalog import services

    for start in range(0, rows, 5000):
        services.create_products_bulk([dict(tenant_id="t", title=f"Product {i}", description="d " * 20,
                                            price_minor=i, available_qty=i % 7)
                                       for i in range(start, min(rows, start + 5000))])
    with connection.cursor() as cur:
        cur.execute((ROOT / "examples/orders/schema.sql").read_text())
        cur.execute("""INSERT INTO orders (tenant_id, customer, total_minor, items, note)
                       SELECT 't', 'Customer ' || g, g, 1 + g %% 4, 'internal' FROM generate_series(1, %s) g""",
                    [rows])
        cur.execute("TRUNCATE transactional_outbox")  # a backfill reads rows, not events


def blueprints(engine):
    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index
    from indexing.control import declared

    tag = uuid.uuid4().hex[:6]
    products = ensure_products_blueprint(name=f"bench-products-{tag}", sidecar={})
    ensure_live_index(products, engine)
    orders, _ = declared.propose(f"bench-orders-{tag}", ROOT / "examples/orders/blueprint", reason="bench",
                                 by="bench", engine=engine)
    declared.enable(orders, engine)
    return products, orders


def backfill_rate(blueprint) -> tuple[float, int]:
    from backfills import services
    from backfills.models import Backfill

    started = time.perf_counter()
    backfill = services.start_build(blueprint, parallelism=1)
    took = time.perf_counter() - started
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED, backfill.status
    return backfill.rows_total / took, backfill.rows_total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="products and orders seeded (each)")
    parser.add_argument("--repeat", type=int, default=3, help="backfills of each blueprint, alternating")
    args = parser.parse_args()

    harness.setup_django({"LOG_LEVEL": "WARNING"})
    from config.celery import app
    from indexing.engines import get_engine

    app.conf.task_always_eager = True  # chunks run here, one worker, as for both blueprints alike
    engine = get_engine()
    log(f"seeding {args.rows:,} products and {args.rows:,} orders")
    seed(args.rows)
    products, orders = blueprints(engine)
    rates = {"model-backed (products)": [], "declared (orders)": []}
    try:
        for run in range(1, args.repeat + 1):
            for label, blueprint in (("model-backed (products)", products), ("declared (orders)", orders)):
                rate, rows = backfill_rate(blueprint)
                rates[label].append(rate)
                log(f"run {run}: {label}: {rows:,} rows, {rate:,.0f} rows/s")
    finally:
        for blueprint in (products, orders):
            for index in blueprint.indices.all():
                engine.delete_index(index.name)
    print(f"\nbackfill rows/s, one worker, throttle off, {args.rows:,} rows, median [min-max] of {args.repeat}:")
    for label, values in rates.items():
        print(f"  {label:<26} {statistics.median(values):>9,.0f}  [{min(values):,.0f}-{max(values):,.0f}]")
    ratios = [d / m for d, m in zip(rates["declared (orders)"], rates["model-backed (products)"])]
    print(f"  declared / model-backed    {statistics.median(ratios):>9.2f}  "
          f"[{min(ratios):.2f}-{max(ratios):.2f}]  (per run, same conditions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
