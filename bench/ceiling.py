"""The node's own _bulk ceiling: what the search node takes, with none of our client code in the way.

Prebuilt NDJSON bodies (external versions, as the consumer and backfills write them) sent over plain
HTTP keep-alive connections (urllib3, one connection per client thread), into a fresh index per
measurement. Each client count is tried with every bulk size of ``SIZES``; the best size is the
ceiling for that client count. The bodies are built before the clock starts, so the figure is the
node's, not Python's.
"""

from __future__ import annotations

import threading
import time

import orjson
import urllib3

SIZES = (1000, 2500, 5000)


def ndjson_bodies(actions, index: str, size: int) -> list[bytes]:
    """``BulkAction``s → request bodies of ``size`` documents each, external versions."""
    bodies = []
    for start in range(0, len(actions), size):
        lines = []
        for a in actions[start:start + size]:
            meta = {"_index": index, "_id": a.id, "version": a.version, "version_type": "external"}
            if a.op == "delete":
                lines.append(orjson.dumps({"delete": meta}))
            else:
                lines.append(orjson.dumps({"index": meta}))
                lines.append(orjson.dumps(a.document, default=str))
        bodies.append(b"\n".join(lines) + b"\n")
    return bodies


def send(url: str, bodies: list[bytes], clients: int, timeout_s: float = 120.0) -> tuple[float, int]:
    """Send every body, ``clients`` keep-alive connections in parallel; (seconds, bodies with item errors)."""
    nxt = iter(range(len(bodies)))
    lock = threading.Lock()
    errors = [0]
    failures: list[BaseException] = []

    def client():
        http = urllib3.connection_from_url(url, maxsize=1, block=True, timeout=timeout_s, retries=False)
        try:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                resp = http.urlopen("POST", "/_bulk", body=bodies[i],
                                    headers={"Content-Type": "application/x-ndjson"})
                if resp.status != 200 or b'"errors":true' in resp.data[:200]:
                    with lock:
                        errors[0] += 1
        except BaseException as exc:  # reported by the caller
            failures.append(exc)
        finally:
            http.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t
    if failures:
        raise failures[0]
    return seconds, errors[0]


def measure(engine, url: str, actions, index: str, index_settings: dict, mappings: dict, clients: int,
            sizes=SIZES, build_settings: bool = False) -> dict:
    """Best rate over ``sizes`` for one client count; each size into a fresh index."""
    rates = {}
    errors = 0
    for size in sizes:
        bodies = ndjson_bodies(actions, index, size)
        settings_ = dict(index_settings or {})
        if build_settings:  # what a rebuild runs with: no refresh, no replicas
            settings_ = {**settings_, "refresh_interval": "-1", "number_of_replicas": 0}
        if engine.index_exists(index):
            engine.delete_index(index)
        engine.create_index(index, settings_, mappings)
        try:
            seconds, bad = send(url, bodies, clients)
        finally:
            engine.delete_index(index)
        errors += bad
        rates[size] = len(actions) / seconds
    best = max(rates, key=rates.get)
    return {"clients": clients, "rate": rates[best], "size": best, "rates": rates, "errors": errors,
            "build_settings": build_settings}


def describe(row: dict) -> str:
    sizes = ", ".join(f"{s:,}: {r:,.0f}" for s, r in row["rates"].items())
    return (f"{row['rate']:,.0f} docs/s with {row['clients']} client(s), best bulk {row['size']:,}"
            f"{' (build settings)' if row['build_settings'] else ''} [by size {sizes}]"
            f"{'; ' + str(row['errors']) + ' bodies with item errors' if row['errors'] else ''}")
