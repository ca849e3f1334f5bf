"""Invariants 3 and 9: backfills converge even while racing live updates, resume after a
worker dies mid-chunk, and hold their rows/s limit (changeable while running)."""

import random
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backfills import services
from backfills.models import Backfill, BackfillProgress
from backfills.runner import ChunkRunner
from backfills.throttle import BackfillThrottle
from catalog import services as catalog
from indexing.models import PhysicalIndex
from tests.helpers import assert_index_matches_db, db_thread, pipeline, process_env, wait_converged, wait_until

ROOT = Path(__file__).resolve().parent.parent
# Backfills read from the replica alias (the same test database here).
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])



def bulk_products(n, start=0):
    rows = [dict(tenant_id=f"t{i % 3}", title=f"Backfilled {i}", price_minor=i, available_qty=i % 50) for i in range(start, start + n)]
    for i in range(0, n, 5000):
        catalog.create_products_bulk(rows[i:i + 5000])


def test_full_backfill_of_a_new_index_equals_the_database(products_blueprint, engine, eager_celery):
    bulk_products(30_000)
    backfill = services.start_build(products_blueprint, parallelism=2)
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED
    assert backfill.rows_total == 30_000
    index = backfill.target_index
    index.refresh_from_db()
    assert index.state == PhysicalIndex.State.READY
    assert engine.get_settings(index.name)["refresh_interval"] == "1s"  # serving settings restored
    assert set(backfill.chunks.values_list("status", flat=True)) == {"COMPLETED"}
    assert services.progress(backfill).percent == 100.0
    assert_index_matches_db(engine, index.name)


def test_selection_kinds_index_only_what_was_selected(products_blueprint, engine, eager_celery):
    bulk_products(300)
    live = products_blueprint.live_index()
    ids = sorted(catalog.Product.objects.values_list("pk", flat=True))
    services.schedule(products_blueprint, selection={"kind": "tenant", "tenant_id": "t1"})
    services.schedule(products_blueprint, selection={"kind": "ids", "ids": ids[:5]})
    services.schedule(products_blueprint, selection={"kind": "range", "start_id": ids[-10], "end_id": ids[-1]})
    engine.refresh(live.name)
    expected = set(catalog.Product.objects.filter(tenant_id="t1").values_list("pk", flat=True)) | set(ids[:5]) | set(ids[-10:])
    assert {int(h["_id"]) for h in engine.scan(live.name)} == expected


def test_live_updates_and_deletes_during_a_backfill_are_all_in_the_new_index(products_blueprint, engine):
    rng = random.Random(9)
    deleted: dict[str, int] = {}
    bulk_products(20_000)
    with pipeline(products_blueprint):
        wait_converged(engine, products_blueprint.live_index().name, timeout=120)
        from indexing.blueprints.indices import create_physical_index

        index = create_physical_index(products_blueprint, extra_settings=services.BUILD_SETTINGS)
        backfill = services.schedule(products_blueprint, target_index=index, purpose=Backfill.Purpose.REBUILD,
                                     chunk_size=2000, page_size=250, start=False)
        from backfills import planner

        planner.plan(backfill)
        Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
        # Two chunk workers and a stream of live writes, all at once.
        writer_done = threading.Event()

        def writer():
            from django.db import connections

            try:
                ids = list(catalog.Product.objects.values_list("pk", flat=True))
                for _ in range(1500):
                    if rng.random() < 0.8:
                        catalog.update_product(rng.choice(ids), price_minor=rng.randint(1, 9999), title="Raced")
                    else:
                        pid = ids.pop(rng.randrange(len(ids)))
                        deleted[str(pid)] = catalog.delete_product(pid)
                for _ in range(100):
                    catalog.create_product(tenant_id="t", title="Born during the build", price_minor=1, available_qty=1)
            finally:
                writer_done.set()
                connections.close_all()

        def worker():
            from django.db import connections

            try:
                ChunkRunner(backfill.pk).run()
            finally:
                connections.close_all()

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        backfill.refresh_from_db()
        assert backfill.status == Backfill.Status.COMPLETED
        # Both the live index and the new one converge to the database, deletes included.
        wait_converged(engine, products_blueprint.live_index().name, deleted, timeout=120)
        index.refresh_from_db()
        engine.refresh(index.name)
        wait_converged(engine, index.name, _tombstones_in(engine, index.name, deleted), timeout=120)


def _tombstones_in(engine, index, deleted):
    # A product deleted before the backfill read it never reaches the new index: no tombstone there,
    # which is as correct as a tombstone. Expect tombstones exactly for the deletes the stream wrote.
    engine.refresh(index)
    present = {h["_id"] for h in engine.scan(index, query={"term": {"deleted": True}}, source=["deleted"])}
    return {k: v for k, v in deleted.items() if k in present}


def _worker_process(backfill, stale_s):
    env = process_env(SEARCHSYNC_BACKFILL_STALE_CHUNK_S=str(stale_s))
    return subprocess.Popen([sys.executable, "manage.py", "run_backfill_worker", str(backfill.pk)], cwd=ROOT, env=env)


def kill_worker_mid_chunk(backfill, after_rows: int):
    """A worker process on the backfill's one chunk, SIGKILLed once it has done ``after_rows``:
    the chunk, and the chunk as the killed worker left it."""
    proc = _worker_process(backfill, stale_s=60)
    chunk = BackfillProgress.objects.get(backfill=backfill)
    wait_until(lambda: BackfillProgress.objects.get(pk=chunk.pk).rows_done >= after_rows, timeout=120,
               interval=0.05, message="the worker writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return chunk, BackfillProgress.objects.get(pk=chunk.pk)


def test_worker_killed_mid_chunk_resumes_without_skipping(products_blueprint, engine, settings):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BACKFILL_STALE_CHUNK_S": 60}
    bulk_products(20_000)
    index = products_blueprint.live_index()
    backfill = services.schedule(products_blueprint, target_index=index, chunk_size=20_000, page_size=200,
                                 rows_per_second=4000, start=False)
    from backfills import planner

    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    chunk, killed_at = kill_worker_mid_chunk(backfill, after_rows=3000)
    assert killed_at.status == "RUNNING" and 0 < killed_at.rows_done < 20_000

    # A fresh RUNNING chunk belongs to a live worker: nobody takes it over.
    assert ChunkRunner(backfill.pk).claim() is None
    # Its heartbeat goes stale (backdated rather than waited for): its worker is taken for dead.
    BackfillProgress.objects.filter(pk=chunk.pk).update(updated_at=timezone.now() - timedelta(seconds=61))
    resumed = ChunkRunner(backfill.pk)
    assert resumed.run() == 1
    chunk.refresh_from_db()
    backfill.refresh_from_db()
    assert chunk.status == "COMPLETED" and chunk.attempts == 2
    assert backfill.status == Backfill.Status.COMPLETED
    # Resumed from last_processed_id, not from the start: only the requests in flight were written twice.
    assert 20_000 <= chunk.rows_done <= 20_000 + backfill.page_size
    assert_index_matches_db(engine, index.name)


def test_throttle_holds_its_rate_and_a_change_applies_while_running(products_blueprint, engine):
    bulk_products(6000)
    backfill = services.schedule(products_blueprint, chunk_size=1000, page_size=100, rows_per_second=1000, start=False)
    from backfills import planner

    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    BackfillThrottle(backfill.pk).reset()
    seen_rates = []
    original = BackfillThrottle.acquire

    def spy(self, rows, rows_per_second):
        seen_rates.append(rows_per_second)
        return original(self, rows, rows_per_second)

    BackfillThrottle.acquire = spy
    try:
        runners = [ChunkRunner(backfill.pk) for _ in range(2)]
        started = time.monotonic()
        threads = [db_thread(r.run) for r in runners]
        for t in threads:
            t.start()
        wait_until(lambda: _rows_done(backfill) >= 3000, timeout=60, interval=0.05)
        first_window = time.monotonic() - started
        first_rows = _rows_done(backfill)
        services.set_rate(backfill, 5000)
        for t in threads:
            t.join(120)
    finally:
        BackfillThrottle.acquire = original
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED
    # Two workers share one bucket: together they never beat 1000 rows/s (plus the half-second burst
    # and one page each in flight).
    allowed = 1000 * first_window + 500 + 2 * 100
    print(f"\n{first_rows} rows in {first_window:.2f}s at a 1000 rows/s limit (allowed ≤ {allowed:.0f})")
    assert first_rows <= allowed
    assert 5000 in seen_rates[-3:], "the new rate was not used by the workers"


def _rows_done(backfill):
    from django.db.models import Sum

    return BackfillProgress.objects.filter(backfill=backfill).aggregate(n=Sum("rows_done"))["n"] or 0


def test_the_next_page_is_sent_while_an_answer_is_resolved_one_on_the_wire_at_a_time(products_blueprint, engine,
                                                                                     monkeypatch, settings):
    """The node does not wait for our answer handling between two pages: a page whose answer is slow to
    resolve does not hold back the next page's request; one request is on the wire at a time; progress
    is saved in page order, each page once it is written."""
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BACKFILL_BULK_DOCS": 100}  # a page a request
    bulk_products(1000)
    index = products_blueprint.live_index()
    backfill = services.schedule(products_blueprint, target_index=index, chunk_size=1000, page_size=100, start=False)
    from backfills import planner

    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    runner = ChunkRunner(backfill.pk)
    lock = threading.Lock()
    timeline: list[tuple[str, int]] = []
    on_wire = {"now": 0, "most": 0}
    pages = threading.local()
    send, send_rows = runner.engine._send_bulk, runner.send_rows
    saved: list[int] = []

    def timed_send(body):
        with lock:
            on_wire["now"] += 1
            on_wire["most"] = max(on_wire["most"], on_wire["now"])
            timeline.append(("sent", pages.n))
        try:
            return send(body)
        finally:
            with lock:
                on_wire["now"] -= 1

    def slow_first(backfill_, plan):
        with lock:
            pages.n = len({n for _, n in timeline if _ == "sent"})
        send_rows(backfill_, plan)
        if pages.n == 2:
            # A page's answer is slow to resolve. Not the first: before the second page goes out, the
            # node's write queue is read (a reading is due), with no write of ours in flight.
            time.sleep(1.0)
        with lock:
            timeline.append(("resolved", pages.n))

    original_done = runner._page_done

    def page_done(chunk, future, page, backfill_, read_pool):
        original_done(chunk, future, page, backfill_, read_pool)
        saved.append(chunk.last_processed_id)

    # The engine may be shared with other tests: monkeypatch puts its method back afterwards.
    monkeypatch.setattr(runner.engine, "_send_bulk", timed_send)
    runner.send_rows, runner._page_done = slow_first, page_done
    assert runner.run() == 1

    assert on_wire["most"] == 1, "two pages were on the wire at once"
    assert timeline.index(("sent", 3)) < timeline.index(("resolved", 2)), \
        f"the fourth page's request waited for the third answer to be resolved: {timeline[:8]}"
    assert saved == sorted(saved) and len(saved) == 10
    assert_index_matches_db(engine, index.name)


def _requests_of(products_blueprint, monkeypatch, rows_per_second):
    """A backfill of the products into the live index, one chunk of pages of 100: the documents of each
    bulk request it sent, and the (last id, rows done) its progress went through."""
    from backfills import planner
    from catalog.models import Product

    index = products_blueprint.live_index()
    backfill = services.schedule(products_blueprint, target_index=index, chunk_size=2000, page_size=100,
                                 rows_per_second=rows_per_second, start=False)
    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    BackfillThrottle(backfill.pk).reset()
    runner = ChunkRunner(backfill.pk)
    sizes, progress = [], []
    send, page_done = runner.engine._send_bulk, runner._page_done

    def counted_send(body):
        sizes.append(body.count(b"\n") // 2)  # an action line and a source line per document
        return send(body)

    def recorded(chunk, future, page, backfill_, read_pool):
        page_done(chunk, future, page, backfill_, read_pool)
        progress.append((chunk.last_processed_id, BackfillProgress.objects.get(pk=chunk.pk).rows_done))

    monkeypatch.setattr(runner.engine, "_send_bulk", counted_send)
    runner._page_done = recorded
    assert runner.run() == 1
    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    return sizes, progress, ids


def test_consecutive_pages_go_in_one_request_up_to_the_bulk_size(products_blueprint, engine, monkeypatch,
                                                                  settings):
    """The node indexes a large request for less per document than a page's: consecutive pages are joined
    up to BACKFILL_BULK_DOCS documents. Progress moves once per request, to its last page's last id; a
    throttled backfill joins at most a quarter second of its rate, so its progress moves in steps its
    rate checks can see."""
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BACKFILL_BULK_DOCS": 350}
    bulk_products(1000)

    sizes, progress, ids = _requests_of(products_blueprint, monkeypatch, rows_per_second=None)
    assert sizes == [300, 300, 300, 100], "pages of 100 joined up to 350 documents"
    assert progress == [(ids[299], 300), (ids[599], 600), (ids[899], 900), (ids[999], 1000)]

    # 800 rows/s: a quarter second is 200 rows, two pages (fewer if the throttle saw pressure and
    # slowed down, which only a request's answer can tell: the first one is 200 rows).
    sizes, progress, ids = _requests_of(products_blueprint, monkeypatch, rows_per_second=800)
    assert sizes[0] == 200 and max(sizes) == 200 and sum(sizes) == 1000
    assert [rows for _, rows in progress] == [sum(sizes[:k + 1]) for k in range(len(sizes))]
    assert progress[-1] == (ids[999], 1000)
    assert_index_matches_db(engine, products_blueprint.live_index().name)


def test_the_next_chunk_starts_while_a_chunks_last_page_is_in_flight(products_blueprint, engine, monkeypatch,
                                                                      settings):
    """At a chunk boundary the node is not left idle: the next chunk is claimed and its first page sent
    while the last page of the chunk before is still being written. That chunk is marked completed, and
    its last page saved as progress, only once the page is written."""
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BACKFILL_BULK_DOCS": 100}  # a page a request
    bulk_products(1000)
    index = products_blueprint.live_index()
    backfill = services.schedule(products_blueprint, target_index=index, chunk_size=500, page_size=100, start=False)
    from backfills import planner

    planner.plan(backfill)
    Backfill.objects.filter(pk=backfill.pk).update(status=Backfill.Status.RUNNING)
    first, second = BackfillProgress.objects.filter(backfill=backfill).order_by("start_id")
    runner = ChunkRunner(backfill.pk)
    lock = threading.Lock()
    timeline: list[tuple[str, int]] = []
    seen_by_sixth: list[tuple[str, int | None]] = []
    pages = threading.local()
    send, send_rows = runner.engine._send_bulk, runner.send_rows

    def timed_send(body):
        with lock:
            n = len([e for e in timeline if e[0] == "sent"]) + 1
            timeline.append(("sent", n))
        if n == 6:  # the second chunk's first page: how the first chunk stands while it goes out
            seen_by_sixth.append(BackfillProgress.objects.filter(pk=first.pk)
                                 .values_list("status", "last_processed_id").get())
        return send(body)

    def slow_last_page_of_first_chunk(backfill_, plan):
        with lock:
            pages.n = len([e for e in timeline if e[0] == "sent"]) + 1
        send_rows(backfill_, plan)
        if pages.n == 5:
            time.sleep(1.0)  # the first chunk's last page is slow to resolve
        with lock:
            timeline.append(("resolved", pages.n))

    monkeypatch.setattr(runner.engine, "_send_bulk", timed_send)
    runner.send_rows = slow_last_page_of_first_chunk
    # A reading of the node's write queue waits for every write in flight, by design: on a slow machine
    # one falling due at the boundary would hold the second chunk back. Kept out of this test's timing.
    runner._pool_reading_due = lambda: False
    assert runner.run() == 2

    assert timeline.index(("sent", 6)) < timeline.index(("resolved", 5)), \
        f"the second chunk waited for the first chunk's last page: {timeline}"
    status, last_id = seen_by_sixth[0]
    assert status == BackfillProgress.Status.RUNNING and last_id < first.end_id, \
        "the first chunk was saved as done before its last page was written"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("COMPLETED", "COMPLETED")
    assert (first.last_processed_id, first.rows_done, second.rows_done) == (first.end_id, 500, 500)
    backfill.refresh_from_db()
    assert backfill.status == Backfill.Status.COMPLETED
    assert_index_matches_db(engine, index.name)


def test_the_compiled_keyset_read_pages_as_the_orm_would():
    """The keyset statement is compiled once per backfill: its pages, selection included, are the ORM's."""
    from django.db import connections

    from backfills.runner import KeysetRead
    from catalog.models import Product

    bulk_products(60)
    selection = Product.objects.filter(tenant_id="t1")  # a selection's filter comes before the keyset bounds
    keyset = KeysetRead(selection, 7, "default")
    assert keyset.sql is not None and keyset.params == ["t1"]
    ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    for after, end in [(ids[0] - 1, ids[-1]), (ids[10], ids[30]), (ids[30], ids[31]), (ids[-1], ids[-1] + 100)]:
        with connections["default"].cursor() as cur:
            page = keyset.read(cur, after, end)
        assert page == list(selection.filter(pk__gt=after, pk__lte=end).order_by("pk")
                            .values_list("pk", flat=True)[:7])


def test_a_page_is_read_in_one_read_only_transaction_with_the_statement_timeout(products_blueprint, settings,
                                                                                  monkeypatch):
    """Keyset and events alike: a backfill never writes its source, nor holds it longer than the timeout."""
    import dataclasses

    from django.db import connections

    from indexing.blueprints import table_sources

    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "BACKFILL_STATEMENT_TIMEOUT_MS": 4321}
    bulk_products(30)
    index = products_blueprint.live_index()
    backfill = services.schedule(products_blueprint, target_index=index, chunk_size=1000, page_size=10, start=False)
    seen = []

    def events_for_ids(ids, using="default"):
        with connections[using].cursor() as cur:
            cur.execute("SHOW transaction_read_only")
            read_only = cur.fetchone()[0]
            cur.execute("SHOW statement_timeout")
            seen.append((read_only, cur.fetchone()[0], len(ids)))
        return []

    source = dataclasses.replace(table_sources.blueprint_source(products_blueprint), ids_to_events=events_for_ids)
    monkeypatch.setattr(table_sources, "blueprint_source", lambda blueprint: source)
    runner = ChunkRunner(backfill.pk)
    runner.read_page(backfill, 0, 10**12)
    assert seen == [("on", "4321ms", 10)]
    with connections["replica"].cursor() as cur:  # and only that transaction
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone()[0] != "4321ms"
