"""Cost at everyday rates: CPU of the relay and of the consumer per event, and their share of a core,
at 0, 20, 100 and 400 events/s, with commit → bulk-acknowledged freshness beside it.

    .venv/bin/python bench/cost_ladder.py [--rates 0,20,100,400] [--seconds 30] [--runs 3] [--blueprint products]

The relay and the consumer run in two ``manage.py run_pipeline`` processes (``--no-consumers`` and
``--no-relay``), as production settings run them (DEBUG off), so each one's CPU is read from
/proc on its own. Writers are threads of this process committing, in plain SQL, a product's price
change and its outbox row in one transaction, as an application in any language would; nothing
wakes the relay but its idle probe. Each rate runs ``--runs`` times; the figures are the median
and the spread (min–max) of the runs. Prints figures only; never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from harness import (  # noqa: E402
    BENCH_DB_URL, Pipeline, SqlWriters, caught_up, cleanup, consumer_joined, log, pct, process_cpu_s, sample_marks,
    samples_since, setup_django, wait_until,
)

PRODUCTS = 5_000
TARGETS = {100: 1.0, 400: 0.5}  # ms of CPU per event (relay + consumer) the issue of cost asks for
IDLE_TARGET_PCT = 1.0
FRESHNESS_P99_TARGET_MS = {100: 200.0}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0,20,100,400", help="events/s of each step")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of one run of a step")
    parser.add_argument("--runs", type=int, default=3, help="runs of each step")
    parser.add_argument("--sidecar", action="store_true",
                        help="the shipped products blueprint with its sidecar (two documents per event)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    ts = time.strftime("%Y%m%d%H%M%S")
    logdir = Path(tempfile.mkdtemp(prefix=f"searchsync-cost-{ts}-"))
    setup_django({"SEARCHSYNC_TOPIC_PREFIX": f"cost-{ts}.", "SEARCHSYNC_CONSUMER_GROUP_PREFIX": f"cost-{ts}-indexer.",
                  "LOG_LEVEL": "WARNING"})
    from catalog import services
    from catalog.blueprint import ensure_products_blueprint
    from catalog.management.commands.seed_catalog import random_product
    from indexing.blueprints.indices import ensure_live_index
    from indexing.engines import get_engine
    from indexing.outbox.relay import OutboxRelay

    engine = get_engine()
    blueprint = ensure_products_blueprint(name=f"cost-{ts}", **({} if args.sidecar else {"sidecar": {}}))
    live = ensure_live_index(blueprint, engine)
    indices = [live.name] + ([live.sidecar["name"]] if live.sidecar else [])
    rng = __import__("random").Random(7)
    ids = []
    for start in range(0, PRODUCTS, 2500):
        ids += [p.pk for p in services.create_products_bulk([random_product(rng) for _ in range(2500)])]
    OutboxRelay().drain()
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    relay = Pipeline(env, blueprint.name, logdir / "relay.log", consumers=False)
    consumer = Pipeline(env, blueprint.name, logdir / "consumer.log", relay=False)
    writers = SqlWriters(BENCH_DB_URL, n=4)
    rows = []
    try:
        if not wait_until(lambda: consumer_joined(blueprint.name), 90, 0.2):
            raise RuntimeError(f"the consumer did not join in 90 s; see {logdir}")
        wait_until(lambda: caught_up(blueprint), 120, 0.5)
        time.sleep(5)  # start-up work (imports, first metadata) out of the idle figure
        for rate in rates:
            for run in range(args.runs):
                rows.append(step(blueprint, relay, consumer, writers, ids, rate, args.seconds, seed=run + 1))
                log(f"{rate:,.0f}/s run {run + 1}: " + line(rows[-1]))
    finally:
        writers.close()
        relay.stop()
        consumer.stop()
        cleanup(engine, indices, [blueprint.topic], [blueprint.name])
    report(rows, rates, args)
    return 0


def step(blueprint, relay, consumer, writers, ids, rate, seconds, seed) -> dict:
    marks = sample_marks(blueprint.name)
    cpu0 = process_cpu_s(relay.proc.pid), process_cpu_s(consumer.proc.pid)
    started = time.time()
    wrote = writers.run(ids, rate, seconds, seed)
    elapsed = time.time() - started
    # Wait for the tail (bounded), then take the CPU: the events written are all paid for.
    wait_until(lambda: caught_up(blueprint), 30, 0.2)
    cpu1 = process_cpu_s(relay.proc.pid), process_cpu_s(consumer.proc.pid)
    span = time.time() - started
    lags = samples_since(blueprint.name, marks, time.time())
    q = pct(lags)
    p50, p99 = (q.p50_ms, q.p99_ms) if q else (None, None)
    events = wrote["commits"]
    relay_s, consumer_s = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    return {"rate": rate, "achieved": events / elapsed, "events": events, "errors": wrote["errors"],
            "relay_pct": 100 * relay_s / span, "consumer_pct": 100 * consumer_s / span,
            "relay_ms": 1000 * relay_s / events if events else None,
            "consumer_ms": 1000 * consumer_s / events if events else None,
            "total_ms": 1000 * (relay_s + consumer_s) / events if events else None,
            "p50_ms": p50, "p99_ms": p99}


def line(row: dict) -> str:
    per = "" if row["total_ms"] is None else (f", {row['relay_ms']:.2f} + {row['consumer_ms']:.2f} = "
                                               f"{row['total_ms']:.2f} ms CPU/event")
    fresh = "" if row["p99_ms"] is None else f", commit→ack p50 {row['p50_ms']:.0f} ms p99 {row['p99_ms']:.0f} ms"
    return (f"achieved {row['achieved']:.0f}/s, relay {row['relay_pct']:.1f} % + consumer {row['consumer_pct']:.1f} %"
            f" of a core{per}{fresh}")


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def report(rows: list[dict], rates: list[float], args) -> None:
    print()
    print(f"Cost ladder: relay and consumer CPU at paced SQL writes, {args.runs} runs of {args.seconds:.0f} s per step, "
          f"{'products with sidecar (2 documents/event)' if args.sidecar else 'products, one index'}")
    print("| events/s asked | achieved | relay % core | consumer % core | relay ms/event | consumer ms/event "
          "| total ms/event | commit→ack p50 ms | p99 ms | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for rate in rates:
        mine = [r for r in rows if r["rate"] == rate]
        total_pct = [r["relay_pct"] + r["consumer_pct"] for r in mine]
        if rate == 0:
            verdict = f"idle ≤ {IDLE_TARGET_PCT:.0f} % of a core: " + (
                "MET" if statistics.median(total_pct) <= IDLE_TARGET_PCT else "MISS")
        elif rate in TARGETS:
            ms = statistics.median(r["total_ms"] for r in mine)
            verdict = f"≤ {TARGETS[rate]} ms/event: " + ("MET" if ms <= TARGETS[rate] else "MISS")
            if rate in FRESHNESS_P99_TARGET_MS and all(r["p99_ms"] is not None for r in mine):
                p99 = statistics.median(r["p99_ms"] for r in mine)
                verdict += f"; p99 ≤ {FRESHNESS_P99_TARGET_MS[rate]:.0f} ms: " + (
                    "MET" if p99 <= FRESHNESS_P99_TARGET_MS[rate] else "MISS")
            if statistics.median(r["achieved"] for r in mine) < 0.95 * rate:
                verdict += " (rate not reached)"
        else:
            verdict = "-"
        print(f"| {rate:,.0f} | {spread(r['achieved'] for r in mine)} | {spread(r['relay_pct'] for r in mine)} "
              f"| {spread(r['consumer_pct'] for r in mine)} | {spread(r['relay_ms'] for r in mine)} "
              f"| {spread(r['consumer_ms'] for r in mine)} | {spread(r['total_ms'] for r in mine)} "
              f"| {spread(r['p50_ms'] for r in mine)} | {spread(r['p99_ms'] for r in mine)} | {verdict} |")


if __name__ == "__main__":
    raise SystemExit(main())
