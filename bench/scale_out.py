"""Scale-out: live-consumer throughput against the number of consumer processes sharing a blueprint.

    .venv/bin/python bench/scale_out.py [--consumers 1,2,3] [--backlog 60000] [--partitions 6] [--runs 2]

One backlog of upserts is loaded into the outbox once. For every run and consumer count, the rows are
marked unpublished again and relayed to a fresh topic of ``--partitions`` partitions; then that many
``manage.py run_pipeline --no-relay`` processes start in one consumer group. The rate runs from the
moment every one of them owns partitions until the Redis counters show the whole backlog resolved.
Each count is compared with the node's ceiling at as many clients (``bench/ceiling.py``: the same
documents, prebuilt NDJSON over plain HTTP), measured in the same run. Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import LoadMonitor, Pipeline, cleanup, cpu_of, log, node_cpu_s, setup_django  # noqa: E402

import ceiling  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", default="1,2,3", help="consumer process counts to run")
    parser.add_argument("--backlog", type=int, default=60_000, help="upsert events each run indexes")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of each run's topic")
    parser.add_argument("--runs", type=int, default=2, help="repetitions of every consumer count (order rotated)")
    args = parser.parse_args()
    counts = [max(1, int(c)) for c in args.consumers.split(",") if c.strip()]
    backlog = max(1, min(args.backlog, 1_000_000))
    ts = time.strftime("%Y%m%d%H%M%S")
    logdir = Path(tempfile.mkdtemp(prefix=f"searchsync-bench-so-{ts}-"))
    setup_django({"SEARCHSYNC_TOPIC_PARTITIONS": str(args.partitions), "LOG_LEVEL": "WARNING"})

    from django.conf import settings

    from indexing.engines import get_engine

    engine = get_engine()
    cfg = settings.SEARCHSYNC
    indices: list[str] = []
    topics: list[str] = []
    names: list[str] = []
    results: dict[int, list[dict]] = {c: [] for c in counts}
    ceilings: dict[int, dict] = {}
    try:
        ids = load_backlog(backlog)
        plan = [c for r in range(args.runs) for c in (counts[r % len(counts):] + counts[:r % len(counts)])]
        live = None
        for i, consumers in enumerate(plan):
            prefix, group = f"bench-so-{ts}-{i}.", f"bench-so-{ts}-{i}-indexer."
            settings.SEARCHSYNC = {**cfg, "TOPIC_PREFIX": prefix, "CONSUMER_GROUP_PREFIX": group,
                                   "TOPIC_PARTITIONS": args.partitions}
            live, row = one_run(engine, f"bench-so-{ts}-{i}", consumers, prefix, group, args.partitions, backlog,
                                logdir / f"run{i}", indices, topics, names)
            results[consumers].append(row)
            log(f"  {consumers} consumer(s): " + (f"{row['rate']:,.0f} events/s" if row.get("rate") else
                                                  f"did not finish ({row.get('why')})"))
        node_ceilings(engine, live, ids, counts, f"bench-so-{ts}-raw", ceilings)
    finally:
        cleanup(engine, indices, topics, names)

    report(args, counts, results, ceilings, backlog, logdir)
    return 0


def load_backlog(backlog: int) -> list[int]:
    from catalog import services
    from catalog.management.commands.seed_catalog import random_product

    rng = random.Random(5)
    log(f"loading {backlog:,} upserts into the outbox")
    ids: list[int] = []
    for start in range(0, backlog, 5000):
        ids += [p.pk for p in services.create_products_bulk(
            [random_product(rng) for _ in range(min(5000, backlog - start))])]
    return ids


def one_run(engine, name: str, consumers: int, prefix: str, group: str, partitions: int, backlog: int,
            log_stem: Path, indices: list[str], topics: list[str], names: list[str]):
    """The whole backlog marked unpublished, relayed to a fresh topic, and indexed by ``consumers`` processes."""
    from django.conf import settings

    from catalog.blueprint import ensure_products_blueprint
    from indexing.blueprints.indices import ensure_live_index
    from indexing.core import stats
    from indexing.models import OutboxEvent
    from indexing.outbox.relay import OutboxRelay

    bp = ensure_products_blueprint(name=name, sidecar={})
    live = ensure_live_index(bp, engine)
    indices.append(live.name)
    topics.append(bp.topic)
    names.append(bp.name)
    OutboxEvent.objects.update(published_at=None)
    relay = OutboxRelay()
    relay.drain()
    relay.producer.flush(30)
    env = {**os.environ, "LOG_LEVEL": "INFO", "SEARCHSYNC_TOPIC_PREFIX": prefix,
           "SEARCHSYNC_CONSUMER_GROUP_PREFIX": group, "SEARCHSYNC_TOPIC_PARTITIONS": str(partitions)}
    load = LoadMonitor()
    procs = [Pipeline(env, bp.name, Path(f"{log_stem}-consumer{k}.log"), relay=False) for k in range(consumers)]
    node0 = node_cpu_s(settings.SEARCH_URL)
    row = measure_run(bp.name, procs, backlog, consumers, stats)
    node1 = node_cpu_s(settings.SEARCH_URL)
    row["busy"] = load.busy()
    if node0 is not None and node1 is not None:
        row["node_cpu_per_k"] = (node1 - node0) * 1000 / backlog
    for p in procs:
        p.stop()
    return live, row


def node_ceilings(engine, live, ids: list[int], counts: list[int], raw_index: str, ceilings: dict) -> None:
    """The node's ceiling with as many clients as each consumer count, the same documents."""
    from django.conf import settings

    from catalog.documents import build_product, product_events
    from indexing.blueprints.documents import drop_unmapped
    from indexing.engines import BulkAction

    log("node ceiling with as many clients, same documents")
    events = [e for start in range(0, len(ids), 5000) for e in product_events(ids[start:start + 5000])]
    mappings = live.mappings
    actions = [BulkAction("index", raw_index, e.entity_id, e.version, drop_unmapped(build_product(e), mappings)[0])
               for e in events]
    for clients in counts:
        ceilings[clients] = ceiling.measure(engine, settings.SEARCH_URL, actions, raw_index, live.settings,
                                            mappings, clients)
        log(f"  {ceiling.describe(ceilings[clients])}")


def measure_run(bp_name: str, procs: list, backlog: int, consumers: int, stats) -> dict:
    """From every consumer owning partitions to the whole backlog resolved."""
    deadline = time.time() + max(180.0, backlog / 200)
    joined = None
    while time.time() < deadline and all(p.alive() for p in procs):
        states = stats.consumer_states(bp_name)
        owning = sum(1 for s in states.values() if s.get("partitions"))
        c = stats.counters(bp_name)
        n = c.get("indexed", 0) + c.get("stale", 0) + c.get("dead_lettered", 0)
        now = time.time()
        if joined is None and owning >= consumers:
            joined, at_join, cpu_at_join = now, n, cpu_of(procs)
        if n >= backlog:
            if joined is None:
                return {"why": "the backlog drained before every consumer owned partitions", "done": n}
            took = max(now - joined, 1e-3)
            steady = cpu_of(procs) - cpu_at_join  # start-up and group join left out
            return {"rate": (backlog - at_join) / took, "before_join": at_join, "seconds": took,
                    "consumer_cpu_per_k": steady * 1000 / max(1, backlog - at_join)}
        time.sleep(0.02)
    return {"why": "timed out or a consumer exited"}


def report(args, counts, results, ceilings, backlog, logdir) -> None:
    print("\n" + "=" * 110)
    print(f"searchsync scale-out — {backlog:,} upserts per run, {args.partitions} partitions, {os.cpu_count()} CPUs; "
          f"rate from every consumer owning partitions to all resolved; {args.runs} run(s) per count")
    print("=" * 110)
    print(f"{'consumers':>9} | {'events/s (every run)':<30} | {'median':>8} | {'vs 1':>5} | {'ceiling, same clients':>22} | "
          f"{'%':>5} | {'consumer CPU-s':>14} | {'node CPU-s':>10} | busy")
    base = None
    for c in counts:
        rows = [r for r in results[c] if r.get("rate")]
        rates = [r["rate"] for r in rows]
        med = statistics.median(rates) if rates else None
        if c == counts[0] and med:
            base = med
        ceil = ceilings.get(c, {}).get("rate")
        cpu = [r["consumer_cpu_per_k"] for r in rows if r.get("consumer_cpu_per_k")]
        node = [r["node_cpu_per_k"] for r in rows if r.get("node_cpu_per_k")]
        busy = [r["busy"] for r in results[c] if r.get("busy") is not None]
        print(f"{c:>9} | {', '.join(f'{r:,.0f}' for r in rates) or 'did not finish':<30} | "
              f"{f'{med:,.0f}' if med else '-':>8} | {f'{med / base:.2f}' if med and base else '-':>5} | "
              f"{f'{ceil:,.0f}' if ceil else '-':>22} | {f'{100 * med / ceil:.0f}' if med and ceil else '-':>5} | "
              f"{f'{statistics.median(cpu):.3f}' if cpu else '-':>14} | {f'{statistics.median(node):.3f}' if node else '-':>10} | "
              f"{f'{statistics.median(busy):.0f}%' if busy else '-'}")
    print("   CPU-s: CPU-seconds per 1,000 events: all consumer processes together from the moment all own partitions "
          "(start-up and group join left out), and the search node over the whole run.")
    print(f"   logs in {logdir}")


if __name__ == "__main__":
    sys.exit(main())
