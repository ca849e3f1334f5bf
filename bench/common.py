"""What the benchmarks share: an isolated database, logging, and a whole-machine CPU meter."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = "postgresql://searchsync:searchsync@127.0.0.1:5432/searchsync"
# Overridable so two benchmarks on one machine never share (and drop) one database.
BENCH_DB = os.environ.get("SEARCHSYNC_BENCH_DB", "searchsync_bench")
BENCH_DB_URL = f"postgres://searchsync:searchsync@127.0.0.1:5432/{BENCH_DB}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def setup_django(env: dict) -> None:
    """Point this process at a freshly created bench database, start Django and migrate."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": BENCH_DB_URL,
        "REPLICA_DATABASE_URL": BENCH_DB_URL,
        "PYTHONUNBUFFERED": "1",
        # As in production: with DEBUG on, Django keeps every query of a long-running process in memory.
        "DJANGO_DEBUG": "0",
        # Production settings refuse the development key; a throwaway one per bench run.
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": os.environ.get("DJANGO_ALLOWED_HOSTS") or "127.0.0.1,localhost",
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
