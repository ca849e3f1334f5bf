"""Read-your-writes waits are bounded per process and per user, and the app server they run in keeps
threads for everyone else: one client's waits never starve other requests."""

import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from catalog import services
from indexing.pipeline import wait_limits
from tests.helpers import ROOT, process_env

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_with_token(django_user_model, name, *permissions):
    from django.contrib.auth.models import Permission

    from accounts import tokens

    user = django_user_model.objects.create_user(f"{name}-{uuid.uuid4().hex[:6]}", password="x")
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user, tokens.create(user, "tests", days=1)[1]


def test_waits_past_the_user_cap_are_refused_in_every_process(settings):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "WAITS_PER_USER": 2, "WAITS_PER_PROCESS": 10}
    user = f"user:test-{uuid.uuid4().hex}"
    with wait_limits.slot(user, 5) as first, wait_limits.slot(user, 5) as second:
        assert first is None and second is None
        assert wait_limits.user_waits(user) == 2
        # Another web process sees the same count: the per-user cap is in Redis.
        other_process = wait_limits.ProcessSlots(limit=lambda: 10)
        previous, wait_limits.PROCESS = wait_limits.PROCESS, other_process
        try:
            with wait_limits.slot(user, 5) as third:
                assert third == wait_limits.Refusal("too many concurrent waits", "user")
            assert other_process.taken == 0  # the process slot it took is given back
        finally:
            wait_limits.PROCESS = previous
    assert wait_limits.user_waits(user) == 0  # released in a finally
    with wait_limits.slot(user, 5) as again:
        assert again is None


def test_waits_past_the_process_cap_are_refused(settings):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "WAITS_PER_PROCESS": 1, "WAITS_PER_USER": 10}
    with wait_limits.slot(f"user:a-{uuid.uuid4().hex}", 5) as first:
        assert first is None
        with wait_limits.slot(f"user:b-{uuid.uuid4().hex}", 5) as second:
            assert second == wait_limits.Refusal("too many concurrent waits", "process")
    assert wait_limits.PROCESS.taken == 0


def test_a_wait_whose_process_died_stops_counting_at_its_deadline(settings, monkeypatch):
    settings.SEARCHSYNC = {**settings.SEARCHSYNC, "WAITS_PER_USER": 1}
    monkeypatch.setattr(wait_limits, "MARGIN_S", 0.0)
    user = f"user:test-{uuid.uuid4().hex}"
    assert wait_limits._take_for_user(user, "killed-mid-wait", 0.5)  # never released
    with wait_limits.slot(user, 5) as refused:
        assert refused is not None and refused.limit == "user"
    time.sleep(0.6)
    with wait_limits.slot(user, 5) as free:
        assert free is None


def test_one_users_waits_never_starve_another_users_requests(products_blueprint, django_user_model, tmp_path):
    """Twenty concurrent waits from one token against a real gunicorn (as devstack and Docker start it):
    the waits beyond the caps answer at once as not waited, and another user's request is served."""
    from indexing.conf import BY_NAME

    waits = 20
    timeout_s = 10
    _, operator = _user_with_token(django_user_model, "waiter", "operate_pipeline", "write_products")
    _, reader = _user_with_token(django_user_model, "reader")
    ids = [services.create_product(tenant_id="t", title=f"Wait {i}", price_minor=1, available_qty=1).pk
           for i in range(waits)]

    port = _free_port()
    # The test's settings are this process's; the server reads the defaults from its environment.
    env = process_env(None, LOG_LEVEL="WARNING")
    for name in ("WAITS_PER_PROCESS", "WAITS_PER_USER", "WEB_THREADS"):
        env.pop(f"SEARCHSYNC_{name}", None)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-c", str(ROOT / "gunicorn.conf.py"),
                               "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "web.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                requests.get(f"{base}/accounts/login/", timeout=5)
                break
            except requests.RequestException:  # still booting
                time.sleep(0.5)

        def patch(pid):
            started = time.monotonic()
            response = requests.patch(f"{base}/api/v1/catalog/products/{pid}/?wait=searchable&timeout={timeout_s}",
                                      json={"price_minor": 2}, headers={"Authorization": f"Token {operator}"},
                                      timeout=60)
            return response, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=waits) as pool:
            patches = [pool.submit(patch, pid) for pid in ids]
            time.sleep(1.0)  # the waits have started
            started = time.monotonic()
            other = requests.get(f"{base}/api/v1/", headers={"Authorization": f"Token {reader}"}, timeout=60)
            other_s = time.monotonic() - started
            answers = [future.result() for future in patches]
    finally:
        server.terminate()
        server.wait(30)

    print(f"\nanother user's GET /api/v1/ took {other_s * 1000:.0f} ms during {waits} waits")
    assert other.status_code == 200, other.text
    assert other_s < 5, f"another user's request waited {other_s:.1f} s behind the waits"
    assert all(r.status_code == 200 for r, _ in answers), [r.text for r, _ in answers if r.status_code != 200]
    searches = [r.json()["search"] for r, _ in answers]
    # No consumer runs, so a wait that ran lasted its whole timeout; the rest answered at once.
    waited = [s for s in searches if s["outcome"] == "timeout"]
    refused = [s for s in searches if s["outcome"] == "not_waited"]
    per_user = BY_NAME["WAITS_PER_USER"].default  # the server runs with the defaults
    assert len(waited) + len(refused) == waits, searches
    assert 1 <= len(waited) <= per_user, [s["outcome"] for s in searches]
    assert {(s["reason"], s["limit"]) for s in refused} <= {("too many concurrent waits", "user"),
                                                             ("too many concurrent waits", "process")}
    assert all(s["waited_ms"] == 0 and s["indices"] == [] for s in refused)
    assert max(t for (r, t) in answers if r.json()["search"]["outcome"] == "not_waited") < 5
    # Every write happened, waited for or not.
    from catalog.models import Product

    assert Product.objects.filter(pk__in=ids, price_minor=2).count() == waits
