"""Backfill benchmark: throughput with the throttle off, raw _bulk ceiling, throttle accuracy.

    .venv/bin/python bench/backfill_throughput.py [--rows 100000] [--page-sizes 500,1000] [--workers 2]

Prints figures only (no assertions; never run by the tests). See bench/README.md
for what each figure means and how it is measured. Everything it creates is
isolated: database ``searchsync_bench`` (dropped and recreated at start; the
pipeline bench uses it too, so never run both at once), blueprint
``bench-bf-<ts>`` and indices ``bench-bf-<ts>*`` (deleted at the end, together
with the throttle's Redis keys).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, LoadMonitor, Pinning, fmt, log, med, node_cpu_s, setup_django  # noqa: E402

import ceiling  # noqa: E402

SEED_CHUNK = 5_000             # products per create_products_bulk transaction
TP_CHUNK_SIZE = 10_000         # backfill chunk (id range) size of the throughput runs
SAMPLE_EVERY_S = 0.5           # rows_done sum sampled this often
TICK_S = 0.1                   # status / throttle factor polled this often
FIRST_CLAIM_TICK_S = 0.02      # until the first chunk is claimed
WINDOW_S = 5.0                 # short-window rate of the throttle runs
CHECK_SAMPLE = 20              # documents compared with a local build after each phase
PINNED = {"on": False}          # --pin: throughput and ceiling ran with the node and ours on one core each






# --------------------------------------------------------------------------------------
# Documents, built the way the backfill builds them
# --------------------------------------------------------------------------------------

def build_actions(rows, index_name: str, mappings: dict) -> tuple[list, int]:
    """rows → their events (one statement per 5,000, as a backfill page reads them) → build_product →
    drop_unmapped → BulkAction (external version); and fields dropped."""
    from catalog.documents import build_product, product_events
    from indexing.blueprints.documents import drop_unmapped
    from indexing.engines import BulkAction

    ids = [row.pk for row in rows]
    actions, dropped = [], 0
    for start in range(0, len(ids), 5000):
        for event in product_events(ids[start:start + 5000]):
            document, unknown = drop_unmapped(build_product(event), mappings)
            dropped += len(unknown)
            actions.append(BulkAction("index", index_name, event.entity_id, event.version, document))
    return actions, dropped


def check_index(engine, index_name: str, mappings: dict, ids: list[int], expected: int, seed: int) -> dict:
    """Refresh, count, and compare a sample of stored documents (source and version) with a local build."""
    from catalog.models import Product

    engine.refresh(index_name)
    count = engine.count(index_name)
    sample = random.Random(seed).sample(ids, min(CHECK_SAMPLE, len(ids)))
    actions, _ = build_actions(Product.objects.filter(pk__in=sample).order_by("pk"), index_name, mappings)
    mismatches = 0
    for a in actions:
        got = engine.get(index_name, a.id)
        if got is None or got["_source"] != a.document or got["_version"] != a.version:
            mismatches += 1
    mismatches += len(sample) - len(actions)
    return {"count": count, "expected": expected, "mismatches": mismatches, "sampled": len(sample)}


# --------------------------------------------------------------------------------------
# Backfill runs (manage.py run_backfill_worker subprocesses)
# --------------------------------------------------------------------------------------

def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def startup_cpu_s(env: dict, backfill_id) -> float:
    """CPU of one worker that starts, finds nothing to claim and exits: its Python and Django start-up."""
    before = children_cpu_s()
    subprocess.run([sys.executable, "manage.py", "run_backfill_worker", str(backfill_id)], cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return children_cpu_s() - before


class Workers:
    """`manage.py run_backfill_worker <id>` × n; stdout/stderr of each go to a log file."""

    def __init__(self, n: int, backfill_id, env: dict, logdir: Path, label: str, cpus: str | None = None):
        self.logs = [logdir / f"{label}-worker{k}.log" for k in range(n)]
        self._fhs = [open(path, "ab") for path in self.logs]
        self.started = time.time()
        command = [sys.executable, "manage.py", "run_backfill_worker", str(backfill_id)]
        if cpus is not None:  # pinned (taskset): the workers' core, the node has the other
            command = ["taskset", "-c", cpus, *command]
        self.procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
                      for fh in self._fhs]

    def alive(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        deadline = time.time() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for fh in self._fhs:
            fh.close()
        return [p.returncode for p in self.procs]

    def tail(self, chars: int = 600) -> str:
        text = ""
        for path in self.logs:
            data = path.read_text(errors="replace").strip()
            if data:
                text += f"\n   --- {path.name}: ...{data[-chars:]}"
        return text


def run_backfill(ctx: dict, *, label: str, page_size: int, chunk_size: int, selection: dict,
                 rows_per_second: int | None, workers: int, timeout_s: float, rate_change: tuple[int, int] | None = None,
                 keep_index: bool = False) -> dict:
    """Create a build index, schedule + plan a rebuild backfill, run it in worker processes, watch it.

    ``rate_change`` = (rows_done threshold, new rate): ``set_rate`` is called the first time the sampled
    rows_done sum reaches the threshold.
    """
    from backfills.models import Backfill
    from backfills.services import cancel
    from django.conf import settings

    backfill, index, progress, out = start_backfill(ctx, label=label, page_size=page_size, chunk_size=chunk_size,
                                                    selection=selection, rows_per_second=rows_per_second,
                                                    workers=workers)
    load = LoadMonitor()
    children0 = children_cpu_s()
    node0 = node_cpu_s(settings.SEARCH_URL)
    procs = Workers(workers, backfill.pk, ctx["worker_env"], ctx["logdir"], label, cpus=ctx.get("cpus"))
    out["spawned"] = procs.started
    try:
        claim_at, status = watch_backfill(backfill, progress, procs, out, timeout_s, rate_change)
        out["cpu_busy"] = load.busy()
        out["status"] = status
        if status == Backfill.Status.RUNNING:
            out["error"] = "timed out or workers exited" if procs.alive() else "workers exited before completion"
            cancel(backfill)
        node1 = node_cpu_s(settings.SEARCH_URL)
        rcs = procs.stop()
        # The workers have exited and been waited for: their CPU is in this process's children's usage.
        out["workers_cpu_s"] = children_cpu_s() - children0
        if node0 is not None and node1 is not None:
            out["node_cpu_s"] = node1 - node0
    except BaseException:
        cancel(backfill)
        procs.stop(10)
        raise
    if any(rc not in (0, None) for rc in rcs) or status != Backfill.Status.COMPLETED:
        out["error"] = (out["error"] or f"status {status}, worker exit codes {rcs}") + procs.tail()
    finish_backfill(ctx, backfill, index, progress, procs, out, status, claim_at, selection, keep_index)
    return out


def start_backfill(ctx: dict, *, label: str, page_size: int, chunk_size: int, selection: dict,
                   rows_per_second: int | None, workers: int):
    """What ``start_build`` does, without Celery: build index, schedule, plan, status running."""
    from backfills.models import Backfill, BackfillProgress
    from backfills.planner import plan
    from backfills.services import BUILD_SETTINGS, schedule
    from django.utils import timezone
    from indexing.blueprints.indices import create_physical_index

    engine, bp = ctx["engine"], ctx["bp"]
    index = create_physical_index(bp, extra_settings=BUILD_SETTINGS, engine=engine)
    ctx["indices"] += [index.name] + ([index.sidecar["name"]] if index.sidecar else [])
    backfill = schedule(bp, target_index=index, purpose=Backfill.Purpose.REBUILD, selection=selection,
                        rows_per_second=rows_per_second, chunk_size=chunk_size, page_size=page_size,
                        parallelism=workers, start=False)
    ctx["backfills"].append(str(backfill.pk))
    chunks = plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING, started_at=timezone.now())
    progress = BackfillProgress.objects.filter(backfill_id=backfill.pk)
    out = {"label": label, "index": index.name, "page_size": page_size, "chunk_size": chunk_size,
           "chunks": chunks, "rows_total": backfill.rows_total, "set_rate": rows_per_second, "workers": workers,
           "completed": False, "min_factor": 1.0, "samples": [], "change": None, "error": ""}
    return backfill, index, progress, out


def watch_backfill(backfill, progress, procs: Workers, out: dict, timeout_s: float,
                   rate_change: tuple[int, int] | None):
    """Poll status, first claim, throttle factor and rows_done until the backfill ends, the workers exit or time runs out."""
    from backfills.models import Backfill, BackfillProgress
    from backfills.services import set_rate
    from backfills.throttle import FACTOR_KEY
    from django.db.models import Sum
    from indexing.core.redis_store import get_redis

    redis = get_redis()
    factor_key = FACTOR_KEY.format(id=backfill.pk)
    claim_at = None
    next_sample = time.time()
    deadline = time.time() + timeout_s
    status = Backfill.Status.RUNNING
    while time.time() < deadline:
        polled = time.time()
        status = Backfill.objects.filter(pk=backfill.pk).values_list("status", flat=True).first()
        if claim_at is None:
            claimed = list(progress.exclude(status=BackfillProgress.Status.PENDING)
                           .values_list("status", "rows_done", "updated_at"))
            if claimed:
                # A chunk still RUNNING at rows_done 0 carries its claim time; otherwise the poll time is used.
                fresh = [u.timestamp() for s, d, u in claimed if s == BackfillProgress.Status.RUNNING and d == 0]
                claim_at = min(fresh) if fresh else polled
                out["claim_exact"] = bool(fresh)
                out["samples"].append((claim_at, 0))
                next_sample = claim_at + SAMPLE_EVERY_S
        raw_factor = redis.get(factor_key)
        if raw_factor is not None:
            out["min_factor"] = min(out["min_factor"], float(raw_factor))
        if claim_at is not None and polled >= next_sample:
            done = progress.aggregate(n=Sum("rows_done"))["n"] or 0
            t = time.time()
            out["samples"].append((t, done))
            next_sample += SAMPLE_EVERY_S
            if rate_change and out["change"] is None and done >= rate_change[0]:
                set_rate(backfill, rate_change[1])
                out["change"] = (time.time(), done, rate_change[1])
                log(f"  set_rate → {rate_change[1]:,}/s at {done:,} rows")
        if status != Backfill.Status.RUNNING:
            break
        if not procs.alive():
            status = Backfill.objects.filter(pk=backfill.pk).values_list("status", flat=True).first()
            break
        time.sleep(FIRST_CLAIM_TICK_S if claim_at is None else TICK_S)
    return claim_at, status


def finish_backfill(ctx: dict, backfill, index, progress, procs: Workers, out: dict, status, claim_at,
                    selection: dict, keep_index: bool) -> None:
    """Rates from the first claim and from spawn, the sampled curve cut at ``finished_at``, the index checked."""
    from backfills.models import Backfill
    from django.db.models import Sum

    backfill.refresh_from_db()
    out["rows_done"] = progress.aggregate(n=Sum("rows_done"))["n"] or 0
    if status == Backfill.Status.COMPLETED and backfill.finished_at and claim_at is not None:
        out["completed"] = True
        out["claim"] = claim_at
        out["finished"] = backfill.finished_at.timestamp()
        out["seconds"] = out["finished"] - claim_at
        out["rate"] = out["rows_total"] / out["seconds"]
        out["seconds_from_spawn"] = out["finished"] - procs.started
        out["rate_from_spawn"] = out["rows_total"] / out["seconds_from_spawn"]
        out["samples"] = [(t, d) for t, d in out["samples"] if t < out["finished"]] + [(out["finished"], out["rows_done"])]
    ids = ctx["ids_for"](selection)
    out["check"] = check_index(ctx["engine"], index.name, index.mappings, ids, len(ids), seed=len(ctx["backfills"]))
    if not keep_index:
        ctx["engine"].delete_index(index.name)
        if index.sidecar:
            ctx["engine"].delete_index(index.sidecar["name"])


def windows(points: list[tuple[float, int]], t_lo: float, t_hi: float, span: float = WINDOW_S) -> list[float]:
    """Rates over every window of ≥ span seconds between samples inside [t_lo, t_hi]."""
    pts = [(t, d) for t, d in points if t_lo - 1e-6 <= t <= t_hi + 1e-6]
    rates = []
    for i, (ti, di) in enumerate(pts):
        for tj, dj in pts[i + 1:]:
            if tj - ti >= span:
                rates.append((dj - di) / (tj - ti))
                break
    return rates


def throttle_figures(run: dict) -> dict:
    """Set vs achieved over the whole run (and before/after a rate change), with 5-s window rates."""
    if not run.get("completed"):
        return {}
    pts, claim, end = run["samples"], run["claim"], run["finished"]
    segments = []
    if run["change"] is None:
        segments.append(("whole run", run["set_rate"], claim, end, 0, run["rows_total"]))
    else:
        t_change, rows_change, new_rate = run["change"]
        pts = sorted(pts + [(t_change, rows_change)])
        segments.append(("before set_rate", run["set_rate"], claim, t_change, 0, rows_change))
        segments.append(("after set_rate", new_rate, t_change, end, rows_change, run["rows_total"]))
    out = []
    for name, set_rate, t0, t1, d0, d1 in segments:
        w = windows(pts, t0, t1)
        out.append({"name": name, "set": set_rate, "rows": d1 - d0, "seconds": t1 - t0,
                    "achieved": (d1 - d0) / (t1 - t0) if t1 > t0 else None,
                    "windows": len(w), "w_min": min(w) if w else None, "w_median": statistics.median(w) if w else None,
                    "w_max": max(w) if w else None})
    return {"segments": out}


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def cpu_projection(runs: list[dict], workers: int, ceiling_rate: float) -> None:
    """CPU-seconds per 1,000 documents, and what they say where workers and node do not share two cores."""
    startup = STARTUP_CPU_S.get("s") or 0.0
    rows = [r for r in runs if r.get("workers_cpu_s") and r.get("node_cpu_s")]
    if not rows:
        return
    per_k = statistics.median((r["workers_cpu_s"] - workers * startup) * 1000 / r["rows_total"] for r in rows)
    node = statistics.median(r["node_cpu_s"] * 1000 / r["rows_total"] for r in rows)
    cores = os.cpu_count() or 1
    per_worker = 1000 / per_k  # one worker process, on a core of its own
    print(f"      CPU-seconds per 1,000 documents: workers {per_k:.3f} (all together; {startup:.2f} s start-up each "
          f"left out), node {node:.3f}; the rest of the machine's busy time is mostly PostgreSQL")
    print(f"      projected, each worker on a core of its own: {per_worker:,.0f} docs/s per worker; {workers} workers "
          f"= {min(workers * per_worker, 1e12) / ceiling_rate * 100:.0f} % of the {workers}-client ceiling")
    print(f"      bound on this machine, workers and node sharing {cores} CPUs (PostgreSQL not counted): "
          f"{cores * 1000 / (per_k + node):,.0f} docs/s")


STARTUP_CPU_S: dict = {}
WARMUPS: list = []  # (backfill docs/s, ceiling docs/s) of each warm-up, not counted


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="products seeded and backfilled")
    parser.add_argument("--page-sizes", default="500,1000", help="backfill page sizes of the throughput phase")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every throughput configuration")
    parser.add_argument("--workers", type=int, default=2, help="backfill worker processes (and raw _bulk clients)")
    parser.add_argument("--pin", action="store_true",
                        help="throughput and ceiling as two hosts: the search node on core 0, the workers (then the "
                             "raw client) and the rest of the stack (PostgreSQL, Kafka, Redis) on core 1; "
                             "use with --workers 1")
    parser.add_argument("--warmup-runs", type=int, default=1,
                        help="backfills and ceilings run first and not counted: the node compiles the code paths "
                             "of each kind of request only once requests take them")
    parser.add_argument("--throttle-rows", type=int, default=20_000, help="rows of the fixed-rate throttle run "
                        "(the rate-change run uses three times as many and changes the rate after this many)")
    parser.add_argument("--rate", type=int, default=2_000, help="rows_per_second of the throttle runs")
    parser.add_argument("--new-rate", type=int, default=4_000, help="rate set during the second throttle run")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    PINNED["on"] = args.pin
    rows = max(1_000, min(args.rows, 2_000_000))
    page_sizes = [max(1, min(int(p), 10_000)) for p in args.page_sizes.split(",") if p.strip()]
    workers = max(1, min(args.workers, 8))
    repeat = max(1, min(args.repeat, 10))
    rate = max(1, args.rate)
    new_rate = max(1, args.new_rate)
    throttle_rows = max(1_000, min(args.throttle_rows, rows // 3))

    run_started = time.time()
    ts = time.strftime("%Y%m%d%H%M%S")
    logdir = Path(tempfile.mkdtemp(prefix=f"searchsync-bench-bf-{ts}-"))
    setup_django({"LOG_LEVEL": "WARNING"})
    from indexing.engines import get_engine

    engine = get_engine()
    info = engine.info()
    ctx = {"engine": engine, "indices": [], "backfills": [], "logdir": logdir,
           "worker_env": {**os.environ}}
    tp_runs: list[dict] = []
    raws: list[dict] = []
    throttle_runs: list[dict] = []
    seed: dict = {}

    try:
        ids = seed_products(ctx, ts, rows, seed)
        if args.pin:
            ctx["cpus"] = Pinning.OURS
        from django.conf import settings

        with (Pinning(settings.SEARCH_URL) if args.pin else contextlib.nullcontext()):
            run_throughput(ctx, ts, rows, page_sizes, workers, repeat, tp_runs, raws,
                           warmup=max(0, min(args.warmup_runs, 3)))
        ctx.pop("cpus", None)
        if ctx["backfills"]:  # a finished backfill: a worker started on it claims nothing and exits
            STARTUP_CPU_S["s"] = startup_cpu_s(ctx["worker_env"], ctx["backfills"][0])
        run_throttle(ctx, ids, throttle_rows, rate, new_rate, workers, throttle_runs)
    finally:
        clean_up(ctx)

    report(info, rows, workers, seed, tp_runs, raws, throttle_runs, time.time() - run_started, logdir)
    return 0


def seed_products(ctx: dict, ts: str, rows: int, seed: dict) -> list[int]:
    """Seed the products, then the blueprint and its live index; the sorted ids are returned."""
    from django.db import connection

    from catalog import services
    from catalog.blueprint import ensure_products_blueprint
    from catalog.management.commands.seed_catalog import random_product
    from indexing.blueprints.indices import ensure_live_index

    log(f"seeding {rows:,} products (create_products_bulk, {SEED_CHUNK:,} per transaction)")
    rng = random.Random(1)
    t = time.time()
    ids: list[int] = []
    for start in range(0, rows, SEED_CHUNK):
        made = services.create_products_bulk([random_product(rng) for _ in range(min(SEED_CHUNK, rows - start))])
        ids.extend(p.pk for p in made)
    ids.sort()
    seed["seconds"] = time.time() - t
    with connection.cursor() as cur:
        # Vacuumed now, not during the first run: its reads would otherwise set every page's hint bits
        # (and an autovacuum start on the new rows), writes the later runs do not pay for.
        cur.execute("VACUUM ANALYZE catalog_product")
    log(f"  seeded in {seed['seconds']:.1f} s ({rows / seed['seconds']:,.0f} rows/s)")

    def ids_for(selection: dict) -> list[int]:
        if selection.get("kind") == "range":
            return [i for i in ids if selection["start_id"] <= i <= selection["end_id"]]
        return ids

    ctx["ids_for"] = ids_for
    bp = ensure_products_blueprint(name=f"bench-bf-{ts}", sidecar={})
    ctx["bp"] = bp
    live = ensure_live_index(bp, ctx["engine"])
    ctx["indices"].append(live.name)
    # The shipped configuration beside it: the products blueprint as its files declare it, main index
    # + sidecar (two documents per row).
    shipped = ensure_products_blueprint(name=f"bench-bf-{ts}-s")
    ctx["shipped"] = shipped
    live = ensure_live_index(shipped, ctx["engine"])
    ctx["indices"] += [live.name, live.sidecar["name"]]
    return ids


# --------------------------------------------------------------------------------------
# Phases 1 and 2: backfill throughput and the node's ceiling
# --------------------------------------------------------------------------------------

def run_throughput(ctx: dict, ts: str, rows: int, page_sizes: list[int], workers: int, repeat: int,
                   tp_runs: list[dict], raws: list[dict], warmup: int = 1) -> None:
    # Each repetition runs every backfill page size and every raw client count once, in an order
    # rotated per repetition, so a slow moment of the shared machine does not hit one config only.
    from backfills.services import BUILD_SETTINGS
    from catalog.models import Product
    from indexing.blueprints.indices import serving_settings

    bp = ctx["bp"]
    tp_timeout = max(180.0, rows / 200)
    raw_settings = {**serving_settings(bp), **BUILD_SETTINGS}
    t = time.perf_counter()
    all_actions, _ = build_actions(Product.objects.order_by("pk").only("pk"), "", bp.mappings)
    build_rate = len(all_actions) / (time.perf_counter() - t)
    client_counts = sorted({1, workers})
    # A warm-up of each kind first, not counted. Without it the first backfill ran on a node that had
    # only served the seed, and was the slowest of its configuration in the runs of this bench
    # (page 500: 21,172, then 24,686 and 29,474 rows/s).
    for k in range(warmup):
        log(f"warm-up {k + 1}/{warmup} (not counted): a backfill at page {page_sizes[0]}, then the ceiling")
        warm = run_backfill(ctx, label=f"tp-warmup{k + 1}", page_size=page_sizes[0], chunk_size=TP_CHUNK_SIZE,
                            selection={"kind": "all"}, rows_per_second=None, workers=workers, timeout_s=tp_timeout)
        name = f"bench-bf-{ts}-raw-warmup{k + 1}"
        ctx["indices"].append(name)
        raw = ceiling_run(ctx, name, all_actions, raw_settings, 1, k, build_rate)
        WARMUPS.append((warm.get("rate") if warm.get("completed") else None, raw.get("rate")))
        log(f"  warm-up backfill {WARMUPS[-1][0] or 0:,.0f} docs/s, ceiling {WARMUPS[-1][1] or 0:,.0f} docs/s")
    configs = [("backfill", p) for p in page_sizes] + [("shipped", page_sizes[0])] + [("raw", c) for c in client_counts]
    for rep in range(repeat):
        shift = rep % len(configs)
        for kind, conf in configs[shift:] + configs[:shift]:
            if kind == "backfill":
                tp_runs.append(throughput_run(ctx, rep, repeat, rows, conf, workers, tp_timeout))
                continue
            if kind == "shipped":
                tp_runs.append(throughput_run({**ctx, "bp": ctx["shipped"]}, rep, repeat, rows, conf, workers,
                                              tp_timeout, shipped=True))
                continue
            name = f"bench-bf-{ts}-raw{conf}-r{rep + 1}"
            ctx["indices"].append(name)
            log(f"[{rep + 1}/{repeat}] node ceiling: the same {rows:,} documents as prebuilt NDJSON into {name}, "
                f"{conf} keep-alive client(s), bulk sizes {'/'.join(str(n) for n in ceiling.SIZES)}")
            raws.append(ceiling_run(ctx, name, all_actions, raw_settings, conf, rep, build_rate))


def throughput_run(ctx: dict, rep: int, repeat: int, rows: int, page: int, workers: int, timeout_s: float,
                   shipped: bool = False) -> dict:
    what = "the shipped blueprint (main index + sidecar)" if shipped else "one index"
    log(f"[{rep + 1}/{repeat}] backfill of {rows:,} rows into {what}, throttle off, page {page}, "
        f"{workers} worker processes")
    run = run_backfill(ctx, label=f"tp-page{page}{'-shipped' if shipped else ''}-r{rep + 1}", page_size=page,
                       chunk_size=TP_CHUNK_SIZE, selection={"kind": "all"}, rows_per_second=None,
                       workers=workers, timeout_s=timeout_s)
    run["rep"] = rep + 1
    run["shipped"] = shipped
    if run["completed"]:
        log(f"  {run['rows_total']:,} rows in {run['seconds']:.2f} s from the first claim → "
            f"{run['rate']:,.0f} docs/s (from spawn {run['rate_from_spawn']:,.0f}); "
            f"count {run['check']['count']:,}")
    else:
        log(f"  did not complete: {run['error']}")
    return run


def ceiling_run(ctx: dict, name: str, all_actions: list, raw_settings: dict, clients: int, rep: int,
                build_rate: float) -> dict:
    from django.conf import settings

    load = LoadMonitor()
    # Pinned: the raw client's threads run on the workers' core.
    restore = Pinning.this_thread_to_ours() if ctx.get("cpus") else None
    try:
        res = ceiling.measure(ctx["engine"], settings.SEARCH_URL, all_actions, name, raw_settings, ctx["bp"].mappings,
                              clients, build_settings=True)
        res["error"] = ""
    except Exception as exc:
        res = {"clients": clients, "error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        if restore is not None:
            os.sched_setaffinity(0, restore)
    res["cpu_busy"] = load.busy()
    res["rep"] = rep + 1
    res["build_rate"] = build_rate
    log(f"  {ceiling.describe(res)}" if not res["error"] else f"  failed: {res['error']}")
    return res


# --------------------------------------------------------------------------------------
# Phase 3: throttle accuracy
# --------------------------------------------------------------------------------------

def run_throttle(ctx: dict, ids: list[int], throttle_rows: int, rate: int, new_rate: int, workers: int,
                 throttle_runs: list[dict]) -> None:
    sel_a = {"kind": "range", "start_id": ids[0], "end_id": ids[throttle_rows - 1]}
    log(f"phase 3a: throttled backfill of {throttle_rows:,} rows at {rate:,} rows/s, {workers} worker processes")
    run_a = run_backfill(ctx, label="throttle-fixed", page_size=500, chunk_size=5_000, selection=sel_a,
                         rows_per_second=rate, workers=workers, timeout_s=throttle_rows / rate * 3 + 60)
    run_a["figures"] = throttle_figures(run_a)
    throttle_runs.append(run_a)
    if run_a["completed"]:
        log(f"  {run_a['rows_total']:,} rows in {run_a['seconds']:.1f} s → {run_a['rate']:,.0f} rows/s")
    else:
        log(f"  did not complete: {run_a['error']}")

    rows_b = min(3 * throttle_rows, len(ids))
    sel_b = {"kind": "range", "start_id": ids[0], "end_id": ids[rows_b - 1]}
    log(f"phase 3b: throttled backfill of {rows_b:,} rows at {rate:,} rows/s, set_rate({new_rate:,}) "
        f"once {throttle_rows:,} are done")
    run_b = run_backfill(ctx, label="throttle-change", page_size=500, chunk_size=5_000, selection=sel_b,
                         rows_per_second=rate, workers=workers, timeout_s=rows_b / min(rate, new_rate) * 3 + 60,
                         rate_change=(throttle_rows, new_rate))
    run_b["figures"] = throttle_figures(run_b)
    throttle_runs.append(run_b)
    if run_b["completed"]:
        log(f"  {run_b['rows_total']:,} rows in {run_b['seconds']:.1f} s")
    else:
        log(f"  did not complete: {run_b['error']}")


def clean_up(ctx: dict) -> None:
    """Every index this run made, and the throttle's Redis keys of its backfills."""
    from backfills.throttle import BUCKET_KEY, FACTOR_KEY

    for name in ctx["indices"]:
        try:
            ctx["engine"].delete_index(name)
        except Exception as exc:
            log(f"could not delete index {name}: {exc}")
    try:
        from indexing.core.redis_store import get_redis

        r = get_redis()
        keys = [k.format(id=b) for b in ctx["backfills"] for k in (BUCKET_KEY, FACTOR_KEY)]
        if keys:
            r.delete(*keys)
    except Exception as exc:
        log(f"could not delete Redis keys: {exc}")


def report(info, rows, workers, seed, tp_runs, raws, throttle_runs, took_s, logdir) -> None:
    line = "=" * 100
    print()
    print(line)
    print(f"searchsync backfill benchmark — {info.distribution} {info.version} on {platform.node()}, "
          f"{os.cpu_count()} CPUs; {rows:,} products (seeded in {seed.get('seconds', 0):.1f} s)")
    print(line)
    report_throughput(rows, workers, tp_runs)
    report_ceiling(rows, raws)
    report_throttle(workers, throttle_runs)
    report_summary(workers, tp_runs, raws, throttle_runs)
    print(f"\n   total run time {took_s:.0f} s; worker logs in {logdir}")
    print(line)


def report_throughput(rows, workers, tp_runs) -> None:
    print(f"\n1. Backfill throughput, throttle off ({workers} × `manage.py run_backfill_worker`, chunks of "
          f"{TP_CHUNK_SIZE:,}, rebuild into a fresh index with build settings: 0 replicas, refresh -1; "
          f"{rows:,} rows per run)")
    print(f"   {'page':>5} {'runs':>4} | {'from 1st chunk claim':<40} | {'from spawn':>10} | {'count':>11} {'diff':>6} |"
          f" {'min':>6} | {'CPU':>4}")
    print(f"   {'size':>5} {'ok':>4} | {'s':>6} {'docs/s':>8}  {'(every run, in order)':<23} | {'docs/s':>10} |"
          f" {'(every run)':>11} {'':>6} | {'factor':>6} | {'busy':>4}")
    shipped = [r for r in tp_runs if r.get("shipped")]
    tp_runs = [r for r in tp_runs if not r.get("shipped")]
    for page in dict.fromkeys(r["page_size"] for r in tp_runs):
        runs = [r for r in tp_runs if r["page_size"] == page]
        ok = [r for r in runs if r["completed"]]
        if ok:
            each = " ".join(f"{r['rate']:,.0f}" for r in ok)
            counts = {r["check"]["count"] for r in runs}
            count = f"{counts.pop():,}" if len(counts) == 1 else "/".join(f"{r['check']['count']:,}" for r in runs)
            diff = f"{sum(r['check']['mismatches'] for r in runs)}/{sum(r['check']['sampled'] for r in runs)}"
            cell = f"{med(ok, 'seconds'):>6.2f} {med(ok, 'rate'):>8,.0f}  ({each})"
            print(f"   {page:>5} {len(ok):>2}/{len(runs)} | {cell:<40} | {med(ok, 'rate_from_spawn'):>10,.0f} |"
                  f" {count:>11} {diff:>6} |"
                  f" {min(r['min_factor'] for r in ok):>6.2f} | {med(ok, 'cpu_busy'):>3.0f}%")
        for r in runs:
            if not r["completed"]:
                print(f"   {page:>5} run {r['rep']} did not complete ({r['status']}); rows done {r['rows_done']:,}: "
                      f"{r['error']}")
    print(f"   s, docs/s, CPU busy: median of the runs. diff: sampled documents ({CHECK_SAMPLE} per run) whose source "
          "or version differs from a local build.")
    print("   min factor: lowest adaptive throttle factor seen (< 1.00: the workers saw cluster or database pressure "
          "and backed off).")
    for backfill, raw in WARMUPS:
        print(f"   warm-up before the runs, not counted: a backfill {backfill or 0:,.0f} docs/s, the ceiling "
              f"{raw or 0:,.0f} docs/s")
    report_shipped(shipped, tp_runs)


def report_shipped(shipped: list[dict], single: list[dict]) -> None:
    """The shipped products blueprint (main + sidecar) against one index at the same page size."""
    ok = [r for r in shipped if r["completed"]]
    if not shipped:
        return
    print(f"\n1b. The shipped configuration: the products blueprint with its sidecar (two documents per row), "
          f"page {shipped[0]['page_size']}")
    if not ok:
        print("   did not complete: " + "; ".join(r["error"] for r in shipped))
        return
    same = [r for r in single if r["completed"] and r["page_size"] == shipped[0]["page_size"]]
    vs = f" = {med(ok, 'rate') / med(same, 'rate'):.0%} of one index's {med(same, 'rate'):,.0f}" if same else ""
    node = [r["node_cpu_s"] / r["rows_total"] * 1000 for r in ok if r.get("node_cpu_s") is not None]
    node_one = [r["node_cpu_s"] / r["rows_total"] * 1000 for r in same if r.get("node_cpu_s") is not None]
    print(f"   {len(ok)}/{len(shipped)} runs: {med(ok, 'rate'):,.0f} rows/s (every run: "
          f"{' '.join(format(r['rate'], ',.0f') for r in ok)}){vs}")
    if node and node_one:
        print(f"   search node CPU-s per 1,000 rows: {statistics.median(node):.3f} (one index: "
              f"{statistics.median(node_one):.3f}); sampled main documents differing from a local build: "
              f"{sum(r['check']['mismatches'] for r in ok)}/{sum(r['check']['sampled'] for r in ok)}")


def report_ceiling(rows, raws) -> None:
    print(f"\n2. The node's ceiling (same node, same run, same {rows:,} documents: product_event → build_product → "
          f"drop_unmapped, built before the clock starts;")
    print(f"   prebuilt NDJSON over plain HTTP keep-alive (urllib3), external versions, fresh index with build "
          f"settings, best bulk size of {'/'.join(str(n) for n in ceiling.SIZES)})")
    for clients in dict.fromkeys(r["clients"] for r in raws):
        runs = [r for r in raws if r["clients"] == clients]
        ok = [r for r in runs if not r.get("error")]
        if ok:
            each = " ".join(f"{r['rate']:,.0f} (bulk {r['size']:,})" for r in ok)
            print(f"   {clients} client(s): median {med(ok, 'rate'):,.0f} docs/s; every run: {each}; "
                  f"CPU busy {med(ok, 'cpu_busy'):.0f} %")
        for r in runs:
            if r.get("error"):
                print(f"   {clients} client(s) run {r['rep']} failed: {r['error']}")
            elif r["errors"]:
                print(f"   {clients} client(s) run {r['rep']}: {r['errors']} bodies with item errors")


def report_throttle(workers, throttle_runs) -> None:
    print(f"\n3. Throttle accuracy ({workers} worker processes, page 500, chunks of 5,000; rows_done sampled every "
          f"{SAMPLE_EVERY_S} s; windows of ≥ {WINDOW_S:.0f} s between samples)")
    print(f"   {'run / segment':<38} {'rows':>7} {'s':>6} {'set/s':>7} {'achieved/s':>10} {'%':>6} | "
          f"{'windows':>7} {'min/s':>7} {'median/s':>8} {'max/s':>7} {'max %':>6} | {'min factor':>10}")
    for r in throttle_runs:
        title = "fixed rate" if r["change"] is None else "rate changed mid-way"
        if not r.get("completed"):
            print(f"   {title:<38} did not complete ({r.get('status')}); rows done {r['rows_done']:,}: {r['error']}")
            continue
        for k, s in enumerate(r["figures"]["segments"]):
            name = f"{title}: {s['name']}"
            pct = 100 * s["achieved"] / s["set"] if s["achieved"] else None
            wmax_pct = 100 * s["w_max"] / s["set"] if s["w_max"] else None
            print(f"   {name:<38} {s['rows']:>7,} {s['seconds']:>6.1f} {s['set']:>7,} {fmt(s['achieved']):>10} "
                  f"{fmt(pct, '.0f'):>5}% | {s['windows']:>7} {fmt(s['w_min']):>7} {fmt(s['w_median']):>8} "
                  f"{fmt(s['w_max']):>7} {fmt(wmax_pct, '.0f'):>5}% | "
                  + (f"{r['min_factor']:>10.2f}" if k == 0 else f"{'':>10}"))
    print("   rows_done moves in steps of one request (a quarter second of the rate, a page of 500 at least), so a "
          f"5-s window rate is exact to ±1 step (±{500 / (WINDOW_S * 2000) * 100:.0f} % at 2,000/s); the bucket "
          "starts full (0.5 s of the rate)")


def report_summary(workers, tp_runs, raws, throttle_runs) -> None:
    print("\nSummary")
    by_page = {}
    for r in tp_runs:
        if r.get("completed") and not r.get("shipped"):  # the ceiling is one index's
            by_page.setdefault(r["page_size"], []).append(r)
    by_clients = {}
    for r in raws:
        if not r.get("error"):
            by_clients.setdefault(r["clients"], []).append(r)
    best = max(by_page, key=lambda p: med(by_page[p], "rate"), default=None)
    fair = by_clients.get(workers)
    if best is not None and fair:
        b, f = med(by_page[best], "rate"), med(fair, "rate")
        ratio = b / f
        verdict = "PASS" if ratio >= 0.90 else "MISS"
        print(f"   backfill / node ceiling ({'pinned, node core 0 / ours core 1, ' if PINNED['on'] else ''}"
              f"{workers} workers vs {workers} clients)   {ratio * 100:6.1f} %   "
              f"(target ≥ 90 %)   {verdict}   [page {best}: {b:,.0f} / {f:,.0f} docs/s, medians]")
        for page, runs in by_page.items():
            if page != best:
                print(f"      page {page}: {med(runs, 'rate') / f * 100:.1f} %")
        if 1 in by_clients and workers != 1:
            one = med(by_clients[1], "rate")
            print(f"      against the 1-client ceiling ({one:,.0f} docs/s): {b / one * 100:.1f} %")
        cpu_projection(by_page[best], workers, f)
    else:
        print("   backfill / node ceiling         n/a   MISS")
    for r in throttle_runs:
        if not r.get("completed"):
            continue
        segs = r["figures"]["segments"]
        if r["change"] is None:
            s = segs[0]
            print(f"   throttle {s['set']:,}/s: achieved {s['achieved']:,.0f}/s ({100 * s['achieved'] / s['set']:.0f} %), "
                  f"max {WINDOW_S:.0f}-s window {fmt(s['w_max'])}/s")
        else:
            before, after = segs
            print(f"   set_rate {before['set']:,} → {after['set']:,}/s: before {fmt(before['achieved'])}/s, "
                  f"after {fmt(after['achieved'])}/s ({100 * after['achieved'] / after['set']:.0f} % of the new rate)")


if __name__ == "__main__":
    sys.exit(main())
