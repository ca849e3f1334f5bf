"""Commit-path benchmark: what the outbox write and the relay's wake-up cost the application's
transactions, and how soon the relay publishes what SQL writers commit.

    .venv/bin/python bench/commit_path.py [--writers 6,12] [--seconds 21] [--rounds 3]
                                          [--variants ...] [--latency-seconds 10]

Part 1, commits/s. Writer processes run small transactions back to back, each one outbox row:

- ``no wake-up``: a plain INSERT of the row over psycopg and nothing else (the floor);
- ``wake-up``: the same row plus the relay wake-up as ``outbox.emit`` sends it (after commit, Redis);
- ``pg_notify``: the row plus ``pg_notify`` inside the transaction (how the relay used to be woken);
- ``django emit``: ``outbox.emit`` through the ORM in ``transaction.atomic()``, wake-up included;
- ``sql emit``: ``SELECT searchsync_emit(...)``, the SQL contract any language calls;
- ``sql emit+notify``: the same plus ``pg_notify`` in the transaction (a function that notified).

On a shared, noisy machine separate runs of each variant are not comparable, so every writer
switches variant together every ``SLICE_S`` (wall clock), in a shuffled order repeated per cycle:
the variants share the same moments of load, and each gets an equal share of the time. Prints
commits/s per variant and writer count, the spread over rounds, and wake-up / no wake-up with the
target ≥ 90 %.

Part 2, relay latency (commit → published, i.e. acknowledged by Kafka and marked): one writer calls
``searchsync_emit`` at ``LATENCY_RATE`` transactions/s, as a SQL client does (no Redis wake-up),
while an ``OutboxRelay`` runs in this process, once per wake-up mode: ``poll only``
(``RELAY_POLL_S`` = 1 s), ``idle probe`` (``RELAY_IDLE_PROBE_MS``, 50 ms) and ``LISTEN`` (the
writer's ``pg_notify`` in its transaction, the relay waiting on ``LISTEN``). Isolated: its own
database (``SEARCHSYNC_BENCH_DB``, recreated) and a topic of its own, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from harness import log, setup_django  # noqa: E402

VARIANTS = ("no wake-up", "wake-up", "pg_notify", "django emit", "sql emit", "sql emit+notify")
LATENCY_MODES = ("poll only", "idle probe", "LISTEN")
LATENCY_RATE = 20.0
CHANNEL = "searchsync_bench"
SQL_EMIT = "SELECT searchsync_emit('bench', '1', '', 1, '{\"title\": \"x\"}'::jsonb)"


SLICE_S = 0.5


def slice_variant(k: int, variants=VARIANTS) -> str:
    """The variant of slice ``k``: every cycle of len(variants) slices is a permutation drawn from the
    cycle's number, the same in every writer, so no variant always follows the same one (pg_notify's
    lock convoy would otherwise spill into the slice after it)."""
    order = list(variants)
    random.Random(k // len(variants)).shuffle(order)
    return order[k % len(variants)]


def writer_main(env: dict, ready, start, seconds: float, results, variants=VARIANTS) -> None:
    os.environ.update(env)
    import django

    django.setup()
    import psycopg
    from django.db import connections, transaction

    from indexing.models import OutboxEvent
    from indexing.outbox.emit import emit
    from indexing.outbox.wakeup import push_wakeup

    # Plain psycopg: each transaction is one outbox INSERT, so what is measured is the commit path,
    # not the ORM. The wake-up is sent exactly as outbox.emit's on_commit callback sends it.
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    insert = (f"INSERT INTO {OutboxEvent._meta.db_table} (aggregate_type, aggregate_id, event_type, payload, "
              "version, tenant_id) VALUES ('bench', '1', 'BENCH_UPSERT', '{\"title\": \"x\"}', 1, '')")
    counts = dict.fromkeys(variants, 0)
    with psycopg.connect(**params) as conn:
        ready.put(1)
        start_at = start.get()  # the same wall-clock start for every writer, sent once all are connected
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        while True:
            now = time.time()
            if now >= end:
                break
            variant = slice_variant(int((now - start_at) / SLICE_S), variants)
            if variant == "django emit":
                with transaction.atomic():
                    emit(aggregate_type="bench", aggregate_id="1", version=1, payload={"title": "x"})
                counts[variant] += 1
                continue
            with conn.transaction():
                conn.execute(SQL_EMIT if variant.startswith("sql emit") else insert)
                if variant in ("pg_notify", "sql emit+notify"):
                    conn.execute(f"SELECT pg_notify('{CHANNEL}', 'bench')")
            if variant == "wake-up":
                push_wakeup()
            counts[variant] += 1
    results.put(counts)


def run(env: dict, writers: int, seconds: float, variants=VARIANTS) -> dict[str, float]:
    """commits/s of each variant over one run of interleaved slices."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results, ready, start = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=writer_main, args=(env, ready, start, seconds, results, variants)) for _ in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    start_at = time.time() + 0.5
    for _ in procs:
        start.put(start_at)
    totals = dict.fromkeys(variants, 0)
    for _ in procs:
        for variant, n in results.get(timeout=seconds + 180).items():
            totals[variant] += n
    for p in procs:
        p.join(30)
    return {v: n / (seconds / len(variants)) for v, n in totals.items()}


def measure_latency(mode: str, seconds: float) -> list[float]:
    """Commit → published (ms) of rows a SQL writer emits at LATENCY_RATE/s, with the relay in ``mode``."""
    import threading

    from django.db import connections

    from indexing.models import OutboxEvent

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    relay = make_relay(mode, params)
    relay.drain()  # rows of the commit-rate part, and the topic created, before the clock starts
    stop = threading.Event()

    def relay_thread():
        try:
            relay.run(stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=relay_thread, daemon=True)
    thread.start()
    committed = emit_paced(params, mode, seconds)
    deadline = time.monotonic() + 30
    while (OutboxEvent.objects.filter(event_id__in=list(committed), published_at__isnull=True).exists()
           and time.monotonic() < deadline):
        time.sleep(0.1)
    stop.set()
    thread.join(60)
    if mode == "LISTEN":
        relay.listener.close()
    published = dict(OutboxEvent.objects.filter(event_id__in=list(committed), published_at__isnull=False)
                     .values_list("event_id", "published_at"))
    return [(published[e].timestamp() - t) * 1000 for e, t in committed.items() if e in published]


def make_relay(mode: str, params: dict):
    """The relay in one wake-up mode: polling only, the idle probe, or LISTEN on the writers' pg_notify."""
    import psycopg

    from indexing.outbox.relay import OutboxRelay
    from indexing.outbox.wakeup import wakeup_key
    from indexing.core.redis_store import get_redis

    class ListeningRelay(OutboxRelay):
        """Woken by the writers' pg_notify through LISTEN, as the relay once was."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.listener = psycopg.connect(**params, autocommit=True)
            self.listener.execute(f"LISTEN {CHANNEL}")

        def _wait_for_wakeup(self):
            for _ in self.listener.notifies(timeout=self.poll_s, stop_after=1):
                pass

    get_redis().delete(wakeup_key())  # tokens left by the commit-rate writers would wake the relay once
    if mode == "LISTEN":
        return ListeningRelay(poll_s=1.0, idle_probe_ms=0)
    return OutboxRelay(poll_s=1.0, idle_probe_ms=50 if mode == "idle probe" else 0)


def emit_paced(params: dict, mode: str, seconds: float) -> dict:
    """``searchsync_emit`` at LATENCY_RATE/s for ``seconds``; event id → wall time after its commit."""
    import psycopg

    committed: dict = {}
    with psycopg.connect(**params) as conn:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            # Paced, with a random phase so commits do not line up with the relay's intervals.
            time.sleep(max(0.0, start + n / LATENCY_RATE + random.random() / LATENCY_RATE - time.monotonic()))
            with conn.transaction():
                event_id = conn.execute(SQL_EMIT).fetchone()[0]
                if mode == "LISTEN":
                    conn.execute(f"SELECT pg_notify('{CHANNEL}', '')")
            committed[event_id] = time.time()
            n += 1
    return committed


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="6,12")
    parser.add_argument("--seconds", type=float, default=21.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="per wake-up mode and round; 0: skip")
    args = parser.parse_args()
    variants = tuple(v.strip() for v in args.variants.split(","))
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    setup()
    rates, ratios = commit_rates(args, variants)
    latency = relay_latency(args) if args.latency_seconds > 0 else {}
    report(rates, ratios, latency)
    return 0


def setup() -> None:
    """Django on a fresh bench database, the SQL contract installed, and a blueprint the relay publishes for."""
    topic_prefix = f"bench-commit-path-{random.randrange(1 << 30):x}."
    setup_django({"LOG_LEVEL": "WARNING", "SEARCHSYNC_TOPIC_PREFIX": topic_prefix})
    from indexing.core import source_databases
    from indexing.outbox import sql_install

    sql_install.install(source_databases.get("default"))
    from indexing.models import IndexBlueprint

    # The relay publishes only aggregate types a blueprint declares (others are dead-lettered).
    IndexBlueprint.objects.create(name="bench", aggregate_type="bench", read_alias="bench_current",
                                  write_alias="bench_write", document_builder="bench", source_model="bench.Bench",
                                  enabled=False)


def commit_rates(args, variants: tuple[str, ...]):
    env = {k: v for k, v in os.environ.items()}
    rates: dict[tuple[int, str], list[float]] = {}
    ratios: dict[int, list[float]] = {}
    for writers in [int(w) for w in args.writers.split(",") if w.strip()]:
        for rnd in range(args.rounds):
            got = run(env, writers, args.seconds, variants)
            for variant, rate in got.items():
                rates.setdefault((writers, variant), []).append(rate)
            log(f"{writers} writers, round {rnd + 1}: " + ", ".join(f"{v} {r:,.0f}/s" for v, r in got.items()))
            for variant in variants:
                if variant != "no wake-up" and "no wake-up" in got:
                    ratios.setdefault((writers, variant), []).append(got[variant] / got["no wake-up"])
    return rates, ratios


def relay_latency(args) -> dict[str, list[tuple[float, float]]]:
    latency: dict[str, list[tuple[float, float]]] = {}
    for rnd in range(args.rounds):
        order = LATENCY_MODES[rnd % 3:] + LATENCY_MODES[:rnd % 3]  # rotated: none always runs first
        for mode in order:
            samples = measure_latency(mode, args.latency_seconds)
            p50, p95 = quantile(samples, 0.5), quantile(samples, 0.95)
            latency.setdefault(mode, []).append((p50, p95))
            log(f"relay latency, {mode}, round {rnd + 1}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                f"max {max(samples):.0f} ms ({len(samples)} rows)")
    from indexing.core.topics import admin_client, topic_for

    admin_client().delete_topics([topic_for("bench")])
    return latency


def report(rates, ratios, latency) -> None:
    if rates:
        print("\nCommit path: commits/s (median [min-max] over rounds), same run")
        for (writers, variant), values in sorted(rates.items()):
            ratio = ratios.get((writers, variant))
            vs = f"   {statistics.median(ratio) * 100:.0f} % of no wake-up" if ratio else ""
            print(f"   {writers:>3} writers  {variant:<16} {statistics.median(values):>8,.0f}  "
                  f"[{min(values):,.0f}-{max(values):,.0f}]{vs}")
    if latency:
        print("\nRelay latency, commit → published (ms; median [min-max] over rounds)")
        for mode, values in latency.items():
            p50s, p95s = [v[0] for v in values], [v[1] for v in values]
            print(f"   {mode:<11} p50 {statistics.median(p50s):>6.0f} [{min(p50s):.0f}-{max(p50s):.0f}]   "
                  f"p95 {statistics.median(p95s):>6.0f} [{min(p95s):.0f}-{max(p95s):.0f}]")
    print("\nSummary")
    for (writers, variant), values in sorted(ratios.items()):
        if variant != "wake-up":
            continue
        worst = min(values)
        verdict = "PASS" if worst >= 0.90 else "MISS"
        print(f"   wake-up / no wake-up, {writers} writers: median {statistics.median(values) * 100:.0f} %, "
              f"worst round {worst * 100:.0f} %   (target ≥ 90 %)   {verdict}")


if __name__ == "__main__":
    sys.exit(main())
