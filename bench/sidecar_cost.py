"""Node cost of a price change: "everything at 1 s", "sidecar at 1 s + main index at 30 s" writing
both documents per event, and the same pair with sidecar-only writes (the consumer's default).

The three layouts get the same write load, in the same run, on the same node: a corpus of products
loaded first, then a paced stream of price/stock updates (the high-velocity change the sidecar is
for), a batch every 100 ms. Every layout is written through the document writer
(``writer.plan_writes`` + ``send_writes``), as the consumer writes; the third one with the
consumer's memory of main writes (``indexing/pipeline/sidecar_only.py``), so a price change sends
the sidecar document only. Measured over each phase:

- node CPU-seconds (``_nodes/_local/stats/process``: the search node's JVM only, not the machine),
  and per 1,000 price changes;
- documents sent; refreshes and refresh time of the layout's indices (``_stats/refresh``), merges
  and merge time; the segment count at the end.

Phases alternate (A, B, C, A, B, C, ...) so a noisy neighbour hits all; each layout's indices are
new per phase. Nothing is asserted; the figures, their spread and the ratios against "all at 1 s"
(the same-run baseline) are printed.

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
    """One index (all fields) or main + sidecar, created from the shipped products definition, written
    through the document writer (``plan_writes`` + ``send_writes``) as the consumer writes them. With
    ``sidecar_only`` the writer gets the consumer's memory of main writes (``pipeline/sidecar_only.py``):
    a price/stock change then writes the sidecar document only."""

    def __init__(self, engine, definition: dict, name: str, sidecar: bool, sidecar_only: bool = False):
        from indexing.blueprints import sidecar as sc
        from indexing.blueprints.documents import get_builder
        from indexing.models import DeleteMode, IndexBlueprint
        from indexing.pipeline.bulk_sink import BulkSink
        from indexing.pipeline.sidecar_only import MainWrites
        from indexing.pipeline.writer import WriteTarget

        self.engine, self.name = engine, name
        self.builder = get_builder(definition["document_builder"])
        self.blueprint = IndexBlueprint(name=name, aggregate_type="product", delete_mode=DeleteMode.TOMBSTONE)
        self.sink = BulkSink.from_settings(engine)
        self.memory = MainWrites() if sidecar_only else None
        spec = sc.SidecarSpec.of(definition["sidecar"]) if sidecar else None
        mappings = definition["mappings"]
        settings = {k: v for k, v in definition["settings"].items()}
        if spec is None:
            settings["refresh_interval"] = "1s"
            self.indices = [(name, settings, mappings)]
            self.target = WriteTarget(name, mappings)
        else:
            settings["refresh_interval"] = spec.main_refresh_interval or "30s"
            side = (sc.index_name(name), sc.sidecar_settings(settings, spec), sc.sidecar_mappings(mappings, spec))
            self.indices = [(name, settings, sc.main_mappings(mappings, spec)), side]
            self.target = WriteTarget(name, self.indices[0][2], {"name": side[0], "fields": list(spec.fields),
                                                                 "mappings": side[2]})

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.indices]

    def create(self) -> None:
        for name, settings, mappings in self.indices:
            self.engine.create_index(name, {**settings, "number_of_replicas": 0}, mappings)

    def delete(self) -> None:
        for name in self.names:
            self.engine.delete_index(name)

    def write(self, events) -> int:
        """Write the events as one batch of the consumer; returns the documents sent."""
        from indexing.pipeline.writer import plan_writes, send_writes

        plan = plan_writes(self.blueprint, [self.target], [(None, e) for e in events], builder=self.builder,
                           main_writes=self.memory)
        result = send_writes(self.blueprint, plan, self.sink)
        if result.dead:
            raise RuntimeError(f"{len(result.dead)} dead letters, e.g. {result.dead[0].error}")
        return result.documents


def load(layout: Layout, events) -> None:
    batch = []
    for event in events:
        batch.append(event)
        if len(batch) >= 2000:
            layout.write(batch)
            batch = []
    if batch:
        layout.write(batch)
    for name in layout.names:
        layout.engine.refresh(name)


def phase(layout: Layout, node: Node, corpus: list, rate: int, seconds: float, seed: int) -> dict:
    """Paced price/stock updates, a batch every 100 ms as the consumer batches them; node cost measured."""
    import dataclasses

    rng = random.Random(seed)
    versions: dict[str, int] = {}
    per_tick = max(1, rate // 10)
    cpu0, stats0 = node.cpu_ms(), node.index_stats(layout.names)
    started = time.monotonic()
    sent = documents = tick = 0
    while time.monotonic() - started < seconds:
        batch = {}
        for _ in range(per_tick):
            event = rng.choice(corpus)
            version = versions.get(event.entity_id, 1) + 1
            versions[event.entity_id] = version
            payload = {**event.payload, "price_minor": rng.randint(100, 99_999), "available_qty": rng.randint(0, 500)}
            batch[event.entity_id] = dataclasses.replace(event, version=version, payload=payload)
        documents += layout.write(list(batch.values()))  # one event per product per batch, as after dedupe
        sent += len(batch)
        tick += 1
        pause = started + tick * 0.1 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - started
    cpu1, stats1 = node.cpu_ms(), node.index_stats(layout.names)
    return {"updates": sent, "documents": documents, "seconds": elapsed, "achieved_per_s": sent / elapsed,
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
    layouts = [("all at 1s", False, False), ("sidecar, both documents", True, False),
               ("sidecar-only writes", True, True)]
    results: dict[str, list[dict]] = {label: [] for label, _, _ in layouts}
    log(f"{engine.info().distribution} {engine.info().version}: {args.docs} products, {args.rate} price/stock "
        f"updates/s for {args.seconds:.0f} s, {args.runs} runs of each layout, alternating")
    for run in range(args.runs):
        for label, with_sidecar, sidecar_only in layouts:
            layout = Layout(engine, definition, f"bench-sidecar-{stamp}-{run}-{int(with_sidecar)}{int(sidecar_only)}",
                            with_sidecar, sidecar_only)
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
    for key in ("achieved_per_s", "documents", "cpu_s", "cpu_s_per_1000", "refreshes", "refresh_s", "merges", "merge_s", "segments"):
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
