"""Commit-path benchmark: what waking the relay costs the application's transactions.

    .venv/bin/python bench/commit_path.py [--writers 6,12] [--seconds 20] [--rounds 3]

Writer processes run small transactions back to back over plain psycopg, each one outbox row
INSERT, in three variants:

- ``wake-up``: the row plus the relay wake-up as ``outbox.emit`` sends it (after commit, Redis);
- ``no wake-up``: the same row and nothing else (the floor the wake-up is compared with);
- ``pg_notify``: the row plus ``pg_notify`` inside the transaction (how the relay used to be woken).

On a shared, noisy machine separate runs of each variant are not comparable, so every writer
switches variant together every ``SLICE_S`` (wall clock), in a shuffled order repeated per cycle of
three: the three variants share the same moments of load, and each gets a third of the time. Prints commits/s per variant and writer
count, the spread over rounds, and wake-up / no wake-up with the target ≥ 90 %. Isolated: its own
database (``SEARCHSYNC_BENCH_DB``, recreated), no topics or indices.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from common import log, setup_django  # noqa: E402

VARIANTS = ("wake-up", "no wake-up", "pg_notify")


SLICE_S = 0.5


def slice_variant(k: int) -> str:
    """The variant of slice ``k``: every cycle of three slices is a permutation drawn from the cycle's
    number, the same in every writer, so no variant always follows the same one (pg_notify's lock
    convoy would otherwise spill into the slice after it)."""
    order = list(VARIANTS)
    random.Random(k // len(VARIANTS)).shuffle(order)
    return order[k % len(VARIANTS)]


def writer_main(env: dict, ready, start, seconds: float, results) -> None:
    os.environ.update(env)
    import django

    django.setup()
    import psycopg
    from django.db import connections

    from indexing.models import OutboxEvent
    from indexing.outbox.wakeup import push_wakeup

    # Plain psycopg: each transaction is one outbox INSERT, so what is measured is the commit path,
    # not the ORM. The wake-up is sent exactly as outbox.emit's on_commit callback sends it.
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    insert = (f"INSERT INTO {OutboxEvent._meta.db_table} (aggregate_type, aggregate_id, event_type, payload, "
              "version, tenant_id) VALUES ('bench', '1', 'BENCH_UPSERT', '{\"title\": \"x\"}', 1, '')")
    counts = dict.fromkeys(VARIANTS, 0)
    with psycopg.connect(**params) as conn:
        ready.put(1)
        start_at = start.get()  # the same wall-clock start for every writer, sent once all are connected
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        while True:
            now = time.time()
            if now >= end:
                break
            variant = slice_variant(int((now - start_at) / SLICE_S))
            with conn.transaction():
                conn.execute(insert)
                if variant == "pg_notify":
                    conn.execute("SELECT pg_notify('searchsync_bench', 'bench')")
            if variant == "wake-up":
                push_wakeup()
            counts[variant] += 1
    results.put(counts)


def run(env: dict, writers: int, seconds: float) -> dict[str, float]:
    """commits/s of each variant over one run of interleaved slices."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results, ready, start = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=writer_main, args=(env, ready, start, seconds, results)) for _ in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    start_at = time.time() + 0.5
    for _ in procs:
        start.put(start_at)
    totals = dict.fromkeys(VARIANTS, 0)
    for _ in procs:
        for variant, n in results.get(timeout=seconds + 180).items():
            totals[variant] += n
    for p in procs:
        p.join(30)
    return {v: n / (seconds / len(VARIANTS)) for v, n in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="6,12")
    parser.add_argument("--seconds", type=float, default=21.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django({"LOG_LEVEL": "WARNING"})
    env = {k: v for k, v in os.environ.items()}
    rates: dict[tuple[int, str], list[float]] = {}
    ratios: dict[int, list[float]] = {}
    for writers in [int(w) for w in args.writers.split(",")]:
        for rnd in range(args.rounds):
            got = run(env, writers, args.seconds)
            for variant, rate in got.items():
                rates.setdefault((writers, variant), []).append(rate)
            log(f"{writers} writers, round {rnd + 1}: " + ", ".join(f"{v} {r:,.0f}/s" for v, r in got.items()))
            ratios.setdefault(writers, []).append(got["wake-up"] / got["no wake-up"])

    print("\nCommit path: commits/s (median [min-max] over rounds), same run")
    for (writers, variant), values in sorted(rates.items()):
        print(f"   {writers:>3} writers  {variant:<11} {statistics.median(values):>8,.0f}  "
              f"[{min(values):,.0f}-{max(values):,.0f}]")
    print("\nSummary")
    for writers, values in sorted(ratios.items()):
        worst = min(values)
        verdict = "PASS" if worst >= 0.90 else "MISS"
        print(f"   wake-up / no wake-up, {writers} writers: median {statistics.median(values) * 100:.0f} %, "
              f"worst round {worst * 100:.0f} %   (target ≥ 90 %)   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
