"""Node cost of freshness: "everything at 1 s" against "sidecar at 1 s + main index at 30 s".

Both layouts get the same write load, in the same run, on the same node: a corpus of products
loaded first, then a paced stream of price/stock updates (the high-velocity change the sidecar is
for). The documents are built as the consumer builds them (the products builder, then
``indexing.blueprints.sidecar.split`` for the sidecar layout: one action to each index, same external
version, sent in one bulk request as ``writer.write_documents`` does). Measured over each phase:

- node CPU-seconds (``_nodes/_local/stats/process``: the search node's JVM only, not the machine);
- refreshes and refresh time of the layout's indices (``_stats/refresh``), merges and merge time;
- the segment count at the end.

Phases alternate (A, B, A, B, ...) so a noisy neighbour hits both; each layout's indices are new
per phase. Nothing is asserted; the figures and their spread are printed.

    .venv/bin/python bench/sidecar_cost.py [--docs 50000] [--rate 1000] [--seconds 60] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.harness import django_secrets, log  # noqa: E402


def http(method: str, url: str, body=None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


class Node:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def cpu_ms(self) -> int:
        stats = http("GET", f"{self.url}/_nodes/_local/stats/process")
        return next(iter(stats["nodes"].values()))["process"]["cpu"]["total_in_millis"]

    def index_stats(self, names: list[str]) -> dict:
        body = http("GET", f"{self.url}/{','.join(names)}/_stats/refresh,merge,segments")["_all"]["primaries"]
        return {"refreshes": body["refresh"]["total"], "refresh_ms": body["refresh"]["total_time_in_millis"],
                "merges": body["merges"]["total"], "merge_ms": body["merges"]["total_time_in_millis"],
                "segments": body["segments"]["count"]}


def product_events(count: int, seed: int = 7):
    from indexing.blueprints.contracts import Event

    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    words = ["lamp", "chair", "desk", "kettle", "teapot", "chai", "rug", "mirror", "shelf", "clock"]
    for i in range(count):
        title = " ".join(rng.choice(words).title() for _ in range(3))
        payload = {"title": title, "description": f"{title} " * 8, "brand_name": "", "brand": "Acme",
                   "category_path": ["Home", "Living"], "price_minor": rng.randint(100, 99_999),
                   "available_qty": rng.randint(0, 500)}
        yield Event(event_id="", event_type="PRODUCT_UPSERT", entity_id=str(i + 1), tenant_id="t", version=1,
                    timestamp=now, payload=payload)


class Layout:
    """One index (all fields) or main + sidecar, created from the shipped products definition."""

    def __init__(self, engine, definition: dict, name: str, sidecar: bool, fast_only: bool = False):
        from indexing.blueprints import sidecar as sc
        from indexing.blueprints.documents import drop_unmapped, get_builder

        self.engine, self.name = engine, name
        self.fast_only = fast_only  # updates touch the sidecar only (what a writer aware of changed fields would send)
        self.builder, self.drop_unmapped = get_builder(definition["document_builder"]), drop_unmapped
        self.spec = sc.SidecarSpec.of(definition["sidecar"]) if sidecar else None
        self.mappings = definition["mappings"]
        settings = {k: v for k, v in definition["settings"].items()}
        if self.spec is None:
            settings["refresh_interval"] = "1s"
            self.indices = [(name, settings, self.mappings)]
        else:
            settings["refresh_interval"] = self.spec.main_refresh_interval or "30s"
            self.indices = [(name, settings, sc.main_mappings(self.mappings, self.spec)),
                            (sc.index_name(name), sc.sidecar_settings(settings, self.spec),
                             sc.sidecar_mappings(self.mappings, self.spec))]
        self.split = sc.split

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.indices]

    def create(self) -> None:
        for name, settings, mappings in self.indices:
            self.engine.create_index(name, {**settings, "number_of_replicas": 0}, mappings)

    def delete(self) -> None:
        for name in self.names:
            self.engine.delete_index(name)

    def actions(self, event, update: bool = False):
        from indexing.engines import BulkAction

        document, _ = self.drop_unmapped(self.builder(event), self.mappings)
        if self.spec is None:
            return [BulkAction("index", self.name, event.entity_id, event.version, document)]
        main, side = self.split(document, self.spec.fields)
        if update and self.fast_only:
            return [BulkAction("index", self.indices[1][0], event.entity_id, event.version, side)]
        return [BulkAction("index", self.name, event.entity_id, event.version, main),
                BulkAction("index", self.indices[1][0], event.entity_id, event.version, side)]


def load(layout: Layout, events) -> None:
    batch = []
    for event in events:
        batch.extend(layout.actions(event))
        if len(batch) >= 4000:
            layout.engine.bulk(batch, chunk_size=4000)
            batch = []
    if batch:
        layout.engine.bulk(batch, chunk_size=4000)
    for name in layout.names:
        layout.engine.refresh(name)


def phase(layout: Layout, node: Node, corpus: list, rate: int, seconds: float, seed: int) -> dict:
    """Paced price/stock updates, a bulk every 100 ms as the consumer batches them; node cost measured."""
    import dataclasses

    rng = random.Random(seed)
    versions: dict[str, int] = {}
    per_tick = max(1, rate // 10)
    cpu0, stats0 = node.cpu_ms(), node.index_stats(layout.names)
    started = time.monotonic()
    sent = 0
    tick = 0
    while time.monotonic() - started < seconds:
        batch = []
        for _ in range(per_tick):
            event = rng.choice(corpus)
            version = versions.get(event.entity_id, 1) + 1
            versions[event.entity_id] = version
            payload = {**event.payload, "price_minor": rng.randint(100, 99_999), "available_qty": rng.randint(0, 500)}
            batch.extend(layout.actions(dataclasses.replace(event, version=version, payload=payload), update=True))
        layout.engine.bulk(batch, chunk_size=len(batch))
        sent += per_tick
        tick += 1
        pause = started + tick * 0.1 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - started
    cpu1, stats1 = node.cpu_ms(), node.index_stats(layout.names)
    return {"updates": sent, "seconds": elapsed, "achieved_per_s": sent / elapsed,
            "cpu_s": (cpu1 - cpu0) / 1000, "cpu_s_per_1000": (cpu1 - cpu0) / sent,
            "refreshes": stats1["refreshes"] - stats0["refreshes"], "refresh_s": (stats1["refresh_ms"] - stats0["refresh_ms"]) / 1000,
            "merges": stats1["merges"] - stats0["merges"], "merge_s": (stats1["merge_ms"] - stats0["merge_ms"]) / 1000,
            "segments": stats1["segments"]}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=1000, help="updates per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fast-only", action="store_true",
                        help="also run a third layout whose price/stock updates write the sidecar only: what the "
                             "layout would save if the main index were not rewritten when only its fast fields change")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.update(django_secrets())
    import django

    django.setup()
    from catalog.blueprint import products_definition
    from django.conf import settings
    from indexing.engines import get_engine

    engine, node = get_engine(), Node(settings.SEARCH_URL)
    definition = products_definition()
    corpus = list(product_events(args.docs))
    stamp = int(time.time())
    layouts = [("all at 1s", False, False), ("sidecar 1s + main 30s", True, False)]
    if args.fast_only:
        layouts.append(("sidecar only (hypothetical)", True, True))
    results: dict[str, list[dict]] = {label: [] for label, _, _ in layouts}
    log(f"{engine.info().distribution} {engine.info().version}: {args.docs} products, {args.rate} price/stock "
        f"updates/s for {args.seconds:.0f} s, {args.runs} runs of each layout, alternating")
    for run in range(args.runs):
        for label, with_sidecar, fast_only in layouts:
            layout = Layout(engine, definition, f"bench-sidecar-{stamp}-{run}-{int(with_sidecar)}{int(fast_only)}",
                            with_sidecar, fast_only)
            layout.create()
            try:
                load(layout, corpus)
                figures = phase(layout, node, corpus, args.rate, args.seconds, seed=run)
            finally:
                layout.delete()
            results[label].append(figures)
            log(f"run {run + 1} {label:28s} " + ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))

    report(results)


def report(results: dict[str, list[dict]]) -> None:
    print("\nmedian (min, max) over runs")
    for key in ("achieved_per_s", "cpu_s", "cpu_s_per_1000", "refreshes", "refresh_s", "merges", "merge_s", "segments"):
        print(f"  {key:16s} " + " | ".join(f"{label}: {spread([r[key] for r in runs])}" for label, runs in results.items()))
    base_cpu = [r["cpu_s"] for r in results["all at 1s"]]
    base_refresh = [r["refresh_s"] for r in results["all at 1s"]]
    for label, runs in list(results.items())[1:]:
        cpu, refresh = [r["cpu_s"] for r in runs], [r["refresh_s"] for r in runs]
        print(f"\n{label} / all at 1 s: node CPU {statistics.median(cpu) / statistics.median(base_cpu):.0%} "
              f"(per-run pairs: {', '.join(f'{y / x:.0%}' for x, y in zip(base_cpu, cpu))}), "
              f"refresh time {statistics.median(refresh) / max(statistics.median(base_refresh), 1e-9):.0%} "
              f"(per-run pairs: {', '.join(f'{y / max(x, 1e-9):.0%}' for x, y in zip(base_refresh, refresh))})")


if __name__ == "__main__":
    main()
