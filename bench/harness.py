"""What the benchmarks share: an isolated database and Django set-up, logging, CPU meters, the writer
processes, the pipeline subprocess, the commit→searchable probe, lag/outbox checks, clean-up and
formatting. Benches import this module, never one another, so each can change on its own.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = "postgresql://searchsync:searchsync@127.0.0.1:5432/searchsync"
# Overridable so two benchmarks on one machine never share (and drop) one database.
BENCH_DB = os.environ.get("SEARCHSYNC_BENCH_DB", "searchsync_bench")
BENCH_DB_URL = f"postgres://searchsync:searchsync@127.0.0.1:5432/{BENCH_DB}"

OP_MIX = (("update", 0.80), ("create", 0.10), ("delete", 0.10))  # the writers' operations and their shares
PROBE_EVERY_S = 0.100          # one probe commit every 100 ms
PROBE_POLL_S = 0.020           # searched every 20 ms until visible
PROBE_TIMEOUT_S = 30.0         # a probe not searchable after this counts as a timeout


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        # FORCE cannot end an autovacuum worker (a superuser's) that is in the database: it leaves
        # within moments, so try again.
        for attempt in range(40):
            try:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                break
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                if attempt == 39:
                    raise
                time.sleep(0.25)
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def django_secrets() -> dict:
    """Production settings refuse the development key and an empty host list; a throwaway key per bench run."""
    return {"DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": os.environ.get("DJANGO_ALLOWED_HOSTS") or "127.0.0.1,localhost"}


def setup_django(env: dict) -> None:
    """Point this process at a freshly created bench database, start Django and migrate."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": BENCH_DB_URL,
        "REPLICA_DATABASE_URL": BENCH_DB_URL,
        "PYTHONUNBUFFERED": "1",
        # As in production: with DEBUG on, Django keeps every query of a long-running process in memory.
        "DJANGO_DEBUG": "0",
        **django_secrets(),
        **env,
    })
    log(f"database {BENCH_DB}: drop and recreate, migrate")
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class LoadMonitor:
    """Whole-machine CPU busy % over a phase (other people's processes included)."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        with open("/proc/stat") as fh:
            parts = [int(x) for x in fh.readline().split()[1:]]
        return parts[3] + parts[4], sum(parts)

    def busy(self) -> float:
        i0, t0 = self.start
        i1, t1 = self._read()
        return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


def process_cpu_s(pid: int) -> float:
    """CPU-seconds (user + system) a process has used so far, children excluded."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_cpu_s() -> float | None:
    """CPU-seconds the local Kafka broker (the oldest ``kafka.Kafka`` process) has used so far; None if
    there is none. On two cores it shares ours: in a pinned run, its work is on our side's bill."""
    found = subprocess.run(["pgrep", "-o", "-f", r"kafka\.Kafka "], capture_output=True, text=True).stdout.split()
    try:
        return process_cpu_s(int(found[0])) if found else None
    except OSError:
        return None


def node_cpu_s(url: str) -> float | None:
    """CPU-seconds the search node's process has used so far (from its own node stats)."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/_nodes/_local/stats/process", timeout=5) as resp:
            stats = json.load(resp)
    except Exception:
        return None
    nodes = (stats or {}).get("nodes", {})
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values()) / 1000 if nodes else None


def cpu_of(procs: list) -> float:
    """CPU-seconds of several `Pipeline` processes together (one that has exited counts nothing)."""
    total = 0.0
    for p in procs:
        try:
            total += process_cpu_s(p.proc.pid)
        except OSError:
            pass
    return total


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------

def pct(values: list[float]):
    from indexing.observability.freshness import quantiles

    return quantiles(values)


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"



def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def fmt(v, spec: str = ",.0f", none: str = "-") -> str:
    return none if v is None else format(v, spec)


# --------------------------------------------------------------------------------------
# Writer processes (spawned; each sets up Django itself so no connection is shared)
# --------------------------------------------------------------------------------------

def writer_main(env: dict, k: int, commands, results) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from catalog import services
    from catalog.management.commands.seed_catalog import random_product
    from catalog.models import Product
    from django.db import connection

    results.put(("ready", k, None))
    pool: list[int] = []  # this writer's products; kept across rates (its creates and deletes change it)
    while True:
        cmd = commands.get()
        if cmd is None:
            break
        if cmd["ids"] is not None:
            pool = list(cmd["ids"])
        rate, seconds, t0, writers = cmd["rate"], cmd["seconds"], cmd["t0"], cmd["writers"]
        rng = random.Random(cmd["seed"])
        interval = writers / rate
        end = t0 + seconds
        nxt = t0 + k * interval / writers  # stagger the writers inside one interval
        counts = {"update": 0, "create": 0, "delete": 0, "error": 0}
        latencies: list[float] = []
        last_error = ""
        behind_resets = 0
        while True:
            now = time.time()
            if now >= end:
                break
            if nxt > now:
                time.sleep(min(nxt - now, end - now))
                continue
            if now - nxt > 1.0:  # more than 1 s behind: stop trying to catch up, re-anchor the schedule
                nxt = now
                behind_resets += 1
            nxt += interval
            r = rng.random()
            op = "update" if r < OP_MIX[0][1] else "create" if r < OP_MIX[0][1] + OP_MIX[1][1] else "delete"
            if op != "create" and len(pool) < 50:
                op = "create"
            started = time.perf_counter()
            try:
                _write(services, random_product, op, rng, pool)
                counts[op] += 1
                latencies.append((time.perf_counter() - started) * 1000)
            except Product.DoesNotExist:
                counts["error"] += 1
            except Exception as exc:  # keep going; reported at the end
                counts["error"] += 1
                last_error = f"{type(exc).__name__}: {exc}"[:300]
        connection.close()
        results.put(("done", k, {"counts": counts, "latencies": latencies, "last_error": last_error,
                                 "behind_resets": behind_resets, "finished": time.time()}))


def _write(services, random_product, op: str, rng: random.Random, pool: list[int]) -> None:
    """One service call; ``pool`` follows the writer's own creates and deletes."""
    if op == "update":
        services.update_product(rng.choice(pool), price_minor=rng.randint(199, 99_999),
                                available_qty=rng.randint(0, 500))
    elif op == "create":
        pool.append(services.create_product(**random_product(rng)).pk)
    else:
        pid = pool.pop(rng.randrange(len(pool)))
        services.delete_product(pid)


class WriterPool:
    def __init__(self, n: int, env: dict):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.n = n
        self.results = ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(n)]
        self.procs = [ctx.Process(target=writer_main, args=(env, k, self.commands[k], self.results), daemon=True)
                      for k in range(n)]
        for p in self.procs:
            p.start()
        self._ready = 0

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.time() + timeout
        while self._ready < self.n:
            kind, k, _ = self.results.get(timeout=max(0.1, deadline - time.time()))
            if kind == "ready":
                self._ready += 1

    def run(self, ids: list[int] | None, rate: float, seconds: float, t0: float, seed: int) -> list[dict]:
        """Run every writer at rate/n from t0; ``ids`` (split by id modulo n) replaces their pools, None keeps them."""
        for k in range(self.n):
            share = None if ids is None else [i for i in ids if i % self.n == k]
            self.commands[k].put({"ids": share, "rate": rate, "seconds": seconds,
                                  "t0": t0, "writers": self.n, "seed": seed * 100 + k})
        out = []
        deadline = t0 + seconds + 120
        while len(out) < self.n:
            kind, k, payload = self.results.get(timeout=max(0.1, deadline - time.time()))
            if kind == "done":
                out.append(payload)
        return out

    def close(self) -> None:
        for q in self.commands:
            try:
                q.put(None)
            except Exception:
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)


# --------------------------------------------------------------------------------------
# SQL writers: the row update and its outbox row in one transaction, as any language writes them
# --------------------------------------------------------------------------------------

def sql_price_change() -> tuple[str, str]:
    """(update, outbox insert) of one product's price and stock, in plain SQL: the product's event
    is built by the same one-statement read the backfills use, so it equals the ORM path's."""
    from catalog.documents import DOCUMENTS_SQL
    from catalog.stamps import CHANGE_SEQUENCE

    update = (f"UPDATE catalog_product SET price_minor = %(price)s, available_qty = %(qty)s, version = version + 1, "
              f"change_stamp = nextval('{CHANGE_SEQUENCE}'), updated_at = now() WHERE id = ANY(%(ids)s)")
    insert = f"""
        INSERT INTO transactional_outbox (aggregate_type, aggregate_id, event_type, payload, version, tenant_id)
        SELECT 'product', d.id::text, 'PRODUCT_UPSERT',
               jsonb_build_object('title', d.title, 'description', d.description, 'brand', d.brand,
                                  'price_minor', d.price_minor, 'available_qty', d.available_qty,
                                  'category_path', to_jsonb(d.path)),
               d.version, d.tenant_id
          FROM ({DOCUMENTS_SQL}) AS d(id, tenant_id, title, description, brand, price_minor, available_qty, path,
                                      version, updated_at)"""
    return update, insert


class SqlWriters:
    """pgbench clients committing price changes in plain SQL at a total rate (Poisson arrivals, ``-R``).

    One transaction is the row update and its outbox row, as an application in any language writes
    them. pgbench is PostgreSQL's own load driver, in C: its clients cost a fraction of what Python
    threads do, so the asked rate is reached on two cores where those could not (755/s of 1,000).
    The product of each transaction is drawn from ``ids`` through a small table of this database."""

    TABLE = "bench_writer_ids"

    def __init__(self, url: str, n: int = 4):
        self.url = url.replace("postgres://", "postgresql://")
        self.n = n
        self.pgbench = pgbench_path()
        self.workdir = Path(tempfile.mkdtemp(prefix="searchsync-pgbench-"))
        self.script = self.workdir / "price_change.sql"
        self.script.write_text(pgbench_price_change(self.TABLE))
        self._ids: list[int] | None = None

    def _load_ids(self, ids: list[int]) -> None:
        if self._ids == ids:
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (n integer PRIMARY KEY, id bigint NOT NULL)")
            conn.execute(f"TRUNCATE {self.TABLE}")
            with conn.cursor().copy(f"COPY {self.TABLE} (n, id) FROM STDIN") as copy:
                for n, pid in enumerate(ids, 1):
                    copy.write_row((n, pid))
        self._ids = list(ids)

    def run(self, ids: list[int], rate: float, seconds: float, seed: int, t0: float | None = None) -> dict:
        """Commit ``rate`` changes a second for ``seconds`` (whole seconds) from ``t0``; returns commits,
        errors, the achieved rate and each commit's latency (ms, the transaction's own time: pgbench's
        schedule lag apart)."""
        if rate <= 0:
            time.sleep(seconds)
            return {"commits": 0, "errors": 0, "achieved": 0.0, "latencies": []}
        self._load_ids(ids)
        whole = max(1, round(seconds))
        prefix = self.workdir / f"run-{seed}-{int(rate)}"
        cmd = [self.pgbench, "--no-vacuum", "--protocol=prepared", f"--client={self.n}",
               f"--jobs={min(self.n, 2)}", f"--rate={rate:g}", f"--time={whole}", f"--file={self.script}",
               f"--random-seed={seed}", f"--define=count={len(ids)}", "--log", f"--log-prefix={prefix}",
               self.url]
        if t0 is not None and t0 > time.time():
            time.sleep(t0 - time.time())
        started = time.time()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.workdir)
        elapsed = max(float(whole), time.time() - started - 0.5)  # pgbench ends its clients at --time
        commits, errors = pgbench_counts(done.stdout)
        if done.returncode != 0 and not commits:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        latencies = []
        for log_file in self.workdir.glob(f"{prefix.name}.*"):
            latencies += pgbench_latencies_ms(log_file)
            log_file.unlink()
        errors += done.stderr.count("ERROR:")
        return {"commits": commits, "errors": errors, "achieved": commits / elapsed, "latencies": latencies,
                "last_error": next((line for line in done.stderr.splitlines() if "ERROR:" in line), "")}

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def pgbench_path() -> str:
    """The newest PostgreSQL's pgbench (it comes with the server package devstack installs)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), key=lambda p: int(p.parts[-3]))
    if found:
        return str(found[-1])
    on_path = shutil.which("pgbench")
    if on_path is None:
        raise RuntimeError("pgbench not found: devstack/up postgres installs PostgreSQL, which brings it")
    return on_path


def pgbench_price_change(ids_table: str) -> str:
    """``sql_price_change`` as a pgbench script: a product drawn from ``ids_table``, a price and a stock."""
    update, insert = sql_price_change()
    product = f"ARRAY(SELECT id FROM {ids_table} WHERE n = :k)"
    lines = [
        "\\set k random(1, :count)",
        "\\set price random(199, 99999)",
        "\\set qty random(0, 500)",
        "BEGIN;",
        update.replace("%(price)s", ":price").replace("%(qty)s", ":qty").replace("%(ids)s", product) + ";",
        " ".join(insert.replace("%(ids)s", product).split()) + ";",
        "END;",
    ]
    return "\n".join(lines) + "\n"


def pgbench_counts(stdout: str) -> tuple[int, int]:
    """(transactions processed, failed) from pgbench's summary."""
    import re

    processed = re.search(r"number of transactions actually processed: (\d+)", stdout)
    failed = re.search(r"number of failed transactions: (\d+)", stdout)
    return (int(processed.group(1)) if processed else 0), (int(failed.group(1)) if failed else 0)


def pgbench_latencies_ms(log_file: Path) -> list[float]:
    """Per-transaction latencies from a pgbench ``--log`` file (client, no, time_us, script, epoch, us,
    schedule_lag_us): the time from the scheduled start includes the lag, which is pgbench's own."""
    out = []
    with open(log_file) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 7 and parts[2].isdigit():
                out.append((int(parts[2]) - int(parts[6])) / 1000)
    return out


# --------------------------------------------------------------------------------------
# Two hosts on one machine: the search node on one core, our process on the other
# --------------------------------------------------------------------------------------

class Pinning:
    """Two hosts on one machine: the search node (every thread of its JVM) on core 0, everything else
    on core 1 (``ours``): the consumer, a backfill worker or the raw client, and the rest of the stack
    (PostgreSQL, Kafka, Redis), which on real hosts would not run on the search node's either. Left
    unpinned, PostgreSQL's page reads and Kafka's fetches were scheduled on the node's core too, so the
    node got less than its core under our load than under the raw client (which needs neither).
    Undone on exit: every process gets every core back."""

    NODE, OURS = "0", "1"

    def __init__(self, url: str):
        self.pid = node_pid(url)
        self.others = [pid for pid in stack_pids() if pid != self.pid]

    def __enter__(self) -> "Pinning":
        subprocess.run(["taskset", "-a", "-cp", self.NODE, str(self.pid)], check=True, stdout=subprocess.DEVNULL)
        for pid in self.others:
            subprocess.run(["taskset", "-a", "-cp", self.OURS, str(pid)], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc) -> None:
        every = f"0-{os.cpu_count() - 1}"
        for pid in [self.pid, *self.others, *stack_pids()]:
            subprocess.run(["taskset", "-a", "-cp", every, str(pid)], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def this_thread_to_ours():
        """Pin the calling thread (and the threads it starts) to our core; returns the mask to restore."""
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(Pinning.OURS)})
        return before


def stack_pids() -> list[int]:
    """Processes of the local stack's PostgreSQL (the postmaster and its backends, which inherit its
    affinity), Kafka and Redis, from devstack's pid files."""
    home = Path(os.environ.get("DEVSTACK_HOME") or ROOT / ".devstack")
    pids: list[int] = []
    for pid_file in (home / "postgres" / "data" / "postmaster.pid", home / "kafka" / "kafka.pid",
                     home / "redis" / "redis.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        pids.append(pid)
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids.extend(int(c) for c in children)
    return pids


def node_pid(url: str) -> int:
    """The process id of the search node answering ``url`` (from its own node info)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url.split(',')[0].rstrip('/')}/_nodes/_local/process", timeout=10) as resp:
        nodes = json.load(resp)["nodes"]
    return int(next(iter(nodes.values()))["process"]["id"])


# --------------------------------------------------------------------------------------
# Pipeline subprocess (manage.py run_pipeline)
# --------------------------------------------------------------------------------------

class Pipeline:
    """`manage.py run_pipeline` in its own process; its log goes to a file, "assigned" lines are timestamped."""

    def __init__(self, env: dict, blueprint: str, log_path: Path, relay: bool = True, consumers: bool = True,
                 cpus: str | None = None):
        args = [sys.executable, "manage.py", "run_pipeline", "--blueprint", blueprint]
        if cpus is not None:  # pinned to these cores (taskset), as on a host of its own
            args = ["taskset", "-c", cpus, *args]
        if not relay:
            args.append("--no-relay")
        if not consumers:
            args.append("--no-consumers")
        self.started = time.time()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.assigned_at: float | None = None
        self.log_path = log_path
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log_path, "ab") as fh:
            for line in self.proc.stderr:
                now = time.time()
                fh.write(line)
                if self.assigned_at is None and b" assigned [" in line and b"assigned []" not in line:
                    self.assigned_at = now

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 45.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode


# --------------------------------------------------------------------------------------
# Probe: commit → searchable
# --------------------------------------------------------------------------------------

# Ids of the documents the probe writes straight into the index to time the node alone.
FLOOR_PREFIX = "searchsync-bench-floor-"


class Probe:
    """Every 100 ms update one probe product through the service; poll the index every 20 ms until it is visible.

    Outstanding probes are searched together in one request per tick (a bool/should of the
    per-probe ``ids`` + ``range version >= v`` filters), so the poll load stays one search
    per 20 ms however many probes are in flight.

    With ``floor``, the node's own share is measured beside, in the same searches: every 100 ms a
    small document is written straight into the index (one versioned ``_bulk`` item, as the consumer
    writes) and timed from its acknowledgement to the poll that sees it. That is what a pipeline
    taking no time at all would measure: the wait for the next refresh, the refresh itself and the
    poll interval. Its documents are deleted at ``finish``.
    """

    FLOOR_IDS = tuple(f"{FLOOR_PREFIX}{k}" for k in range(30))

    def __init__(self, engine, index: str, product_ids: list[int], floor: bool = False):
        self.engine = engine
        self.index = index
        self.ids = list(product_ids)
        self.floor = floor
        self.outstanding: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()
        self.lags_ms: list[float] = []
        self.floor_lags_ms: list[float] = []
        self.floor_errors = 0
        # External versions above any earlier run's, for writes and for the deletes at the end.
        self._floor_version = int(time.time() * 1000)
        self.timeouts = 0
        self.skipped = 0
        self.search_errors = 0
        self.commits = 0
        self._stop_writes = threading.Event()
        self._stop_poll = threading.Event()

    def _write_loop(self, until: float) -> None:
        from catalog import services
        from django.db import connection

        i = 0
        try:
            for _ in self._ticks(until, first=time.time()):
                pid = self.ids[i % len(self.ids)]
                i += 1
                with self.lock:
                    busy = str(pid) in self.outstanding
                if busy:  # its previous change is not searchable yet; don't overwrite the measurement
                    self.skipped += 1
                    continue
                product = services.update_product(pid, available_qty=i % 500)
                committed = time.time()  # update_product returns after COMMIT
                self.commits += 1
                with self.lock:
                    # The document's version is the highest change stamp behind it; this write's stamp is
                    # the newest of all, so the document is this change once its version reaches it.
                    self.outstanding[str(pid)] = (product.change_stamp, committed)
        finally:
            connection.close()

    def _ticks(self, until: float, first: float):
        """One tick every ``PROBE_EVERY_S`` from ``first`` until ``until`` or the stop; a late tick does
        not make the next ones come in a burst."""
        nxt = first
        while not self._stop_writes.is_set() and time.time() < until:
            now = time.time()
            if nxt > now:
                time.sleep(nxt - now)
            nxt = max(nxt + PROBE_EVERY_S, time.time() - PROBE_EVERY_S)
            yield

    def _floor_loop(self, until: float) -> None:
        from indexing.engines.base import BulkAction

        i = 0
        for _ in self._ticks(until, first=time.time() + PROBE_EVERY_S / 2):  # halfway between two probe commits
            doc_id = self.FLOOR_IDS[i % len(self.FLOOR_IDS)]
            i += 1
            with self.lock:
                if doc_id in self.outstanding:
                    continue
            self._floor_version += 1
            version = self._floor_version
            [result] = self.engine.bulk([BulkAction("index", self.index, doc_id, version, {"version": version})])
            acked = time.time()
            if not result.ok:
                self.floor_errors += 1
                continue
            with self.lock:
                self.outstanding[doc_id] = (version, acked)

    def _poll_loop(self) -> None:
        while True:
            with self.lock:
                pending = dict(self.outstanding)
            if not pending:
                if self._stop_poll.is_set():
                    return
                time.sleep(PROBE_POLL_S)
                continue
            t = time.time()
            should = [{"bool": {"filter": [{"ids": {"values": [pid]}}, {"range": {"version": {"gte": v}}}]}}
                      for pid, (v, _) in pending.items()]
            body = {"size": len(should), "_source": False,
                    "query": {"bool": {"should": should, "minimum_should_match": 1}}}
            try:
                hits = self.engine.search(self.index, body)["hits"]["hits"]
            except Exception:
                self.search_errors += 1
                hits = []
            seen = time.time()
            with self.lock:
                for hit in hits:
                    pid = hit["_id"]
                    if pid in self.outstanding and pid in pending:
                        _, committed = self.outstanding.pop(pid)
                        lags = self.floor_lags_ms if pid.startswith(FLOOR_PREFIX) else self.lags_ms
                        lags.append((seen - committed) * 1000)
                for pid, (_, committed) in list(self.outstanding.items()):
                    if seen - committed > PROBE_TIMEOUT_S:
                        del self.outstanding[pid]
                        self.timeouts += 1
            time.sleep(max(0.0, PROBE_POLL_S - (time.time() - t)))

    def run(self, until: float) -> None:
        self.poller = threading.Thread(target=self._poll_loop, name="probe-poll", daemon=True)
        self.writer = threading.Thread(target=self._write_loop, args=(until,), name="probe-write", daemon=True)
        self.floor_writer = (threading.Thread(target=self._floor_loop, args=(until,), name="probe-floor", daemon=True)
                             if self.floor else None)
        self.poller.start()
        self.writer.start()
        if self.floor_writer:
            self.floor_writer.start()

    def finish(self) -> None:
        from indexing.engines.base import BulkAction

        self._stop_writes.set()
        self.writer.join(10)
        if self.floor_writer:
            self.floor_writer.join(10)
        self._stop_poll.set()
        self.poller.join(PROBE_TIMEOUT_S + 5)
        if self.floor:
            self._floor_version += 1
            self.engine.bulk([BulkAction("delete", self.index, doc_id, self._floor_version)
                              for doc_id in self.FLOOR_IDS])


# --------------------------------------------------------------------------------------
# Helpers on the bench process side
# --------------------------------------------------------------------------------------


def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def consumer_joined(bp_name: str) -> bool:
    from indexing.core import stats

    return any(s.get("partitions") for s in stats.consumer_states(bp_name).values())


def unpublished() -> int:
    from indexing.models import OutboxEvent

    return OutboxEvent.objects.filter(published_at__isnull=True).count()


def kafka_lag(bp) -> int | None:
    from indexing.observability.lag import consumer_lag

    try:
        lags = consumer_lag(bp, timeout=3.0)
    except Exception:
        return None
    if not lags:
        return None
    return sum(p.lag for p in lags)


def caught_up(bp) -> bool:
    return unpublished() == 0 and kafka_lag(bp) == 0


def sample_marks(bp_name: str) -> dict[int, int]:
    """Lengths of the consumer's freshness sample lists now, so a phase reads only its own samples."""
    from indexing.observability.freshness import SAMPLES_KEY, minute_of
    from indexing.core.redis_store import get_redis

    now = time.time()
    r = get_redis()
    return {m: r.llen(SAMPLES_KEY.format(name=bp_name, source="event", minute=m))
            for m in (minute_of(now) - 60, minute_of(now))}


def samples_since(bp_name: str, marks: dict[int, int], until: float) -> list[float]:
    from indexing.observability.freshness import SAMPLES_KEY, minute_of, parse_entries
    from indexing.core.redis_store import get_redis

    r = get_redis()
    values: list[float] = []
    minute = min(marks)
    while minute <= minute_of(until):
        raw = r.lrange(SAMPLES_KEY.format(name=bp_name, source="event", minute=minute), marks.get(minute, 0), -1)
        values.extend(parse_entries(raw))
        minute += 60
    return values


def cleanup(engine, indices: list[str], topics: list[str], bp_names: list[str]) -> None:
    for name in indices:
        try:
            engine.delete_index(name)
        except Exception as exc:
            log(f"could not delete index {name}: {exc}")
    try:
        from indexing.core.topics import admin_client

        admin = admin_client()
        if topics:
            for fut in admin.delete_topics(topics, operation_timeout=15).values():
                try:
                    fut.result(15)
                except Exception:
                    pass
    except Exception as exc:
        log(f"could not delete topics {topics}: {exc}")
    try:
        from indexing.core.redis_store import get_redis

        r = get_redis()
        for name in bp_names:
            keys = [f"searchsync:counters:{name}", f"searchsync:consumer-state:{name}"]
            keys += list(r.scan_iter(match=f"searchsync:freshness:{name}:*", count=1000))
            r.delete(*keys)
    except Exception as exc:
        log(f"could not delete Redis keys: {exc}")
