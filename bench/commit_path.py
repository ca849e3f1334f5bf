"""Commit-path benchmark: what waking the relay costs the application's transactions.

    .venv/bin/python bench/commit_path.py [--writers 6,12] [--seconds 8] [--rounds 3]

Each writer process runs small transactions back to back, each one outbox row written with
``outbox.emit`` semantics, in three variants measured in the same run, interleaved round by round:

- ``wake-up``: the row plus the relay wake-up as the application sends it today (after commit);
- ``no wake-up``: the same row and nothing else (the floor the wake-up is compared with);
- ``pg_notify``: the row plus ``pg_notify`` inside the transaction (how the relay used to be woken).

Prints commits/s per variant and writer count, the spread over rounds, and wake-up / no wake-up with the
target ≥ 90 %. Isolated: its own database (``SEARCHSYNC_BENCH_DB``, recreated), no topics or indices.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import log, setup_django  # noqa: E402

VARIANTS = ("wake-up", "no wake-up", "pg_notify")


def writer_main(env: dict, variant: str, start_at: float, seconds: float, results) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection, transaction

    from indexing.contracts import event_type_for
    from indexing.models import OutboxEvent
    from indexing.outbox import emit

    def row():
        return dict(aggregate_type="bench", aggregate_id="1", event_type=event_type_for("bench", False),
                    payload={"title": "x", "price_minor": 1}, version=1)

    n = 0
    time.sleep(max(0.0, start_at - time.time()))
    end = time.time() + seconds
    while time.time() < end:
        with transaction.atomic():
            if variant == "wake-up":
                emit(aggregate_type="bench", aggregate_id="1", version=1, payload={"title": "x", "price_minor": 1})
            elif variant == "no wake-up":
                OutboxEvent.objects.create(**row())
            else:
                OutboxEvent.objects.create(**row())
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_notify('searchsync_bench', 'bench')")
        n += 1
    connection.close()
    results.put(n)


def run(env: dict, writers: int, variant: str, seconds: float) -> float:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 4.0  # every writer started and connected before the clock runs
    procs = [ctx.Process(target=writer_main, args=(env, variant, start_at, seconds, results)) for _ in range(writers)]
    for p in procs:
        p.start()
    total = sum(results.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join(30)
    return total / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="6,12")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django({"LOG_LEVEL": "WARNING"})
    env = {k: v for k, v in os.environ.items()}
    rates: dict[tuple[int, str], list[float]] = {}
    ratios: dict[int, list[float]] = {}
    for writers in [int(w) for w in args.writers.split(",")]:
        for rnd in range(args.rounds):
            # Rotate the order each round so no variant always runs first (or last) on a warming machine.
            order = VARIANTS[rnd % 3:] + VARIANTS[:rnd % 3]
            got = {}
            for variant in order:
                got[variant] = run(env, writers, variant, args.seconds)
                rates.setdefault((writers, variant), []).append(got[variant])
                log(f"{writers} writers, round {rnd + 1}, {variant}: {got[variant]:,.0f} commits/s")
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
