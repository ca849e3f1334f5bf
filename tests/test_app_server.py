"""The console under gunicorn in production mode, as `make up` and Docker run it: it starts,
serves /healthz, the login page and static files, and writes an access log."""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_healthz_login_and_static_files(tmp_path):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": url, "REPLICA_DATABASE_URL": url, "STATIC_ROOT": str(tmp_path / "static")})
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port, access_log = _free_port(), tmp_path / "access.log"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                               "--workers", "2", "--access-logfile", str(access_log)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(60):
            try:
                requests.get(f"{base}/accounts/login/", timeout=10)
                break
            except requests.RequestException:  # still booting
                time.sleep(0.5)
        health = requests.get(f"{base}/healthz", timeout=30)
        # No pipeline runs for this database, so 503 (degraded) is a right answer too; anonymous
        # callers get the status alone either way.
        assert health.json() == {"status": {200: "ok", 503: "degraded"}[health.status_code]}, health.text
        login = requests.get(f"{base}/accounts/login/", timeout=5)
        assert login.status_code == 200 and "Log in" in login.text
        css = requests.get(f"{base}/static/css/console.css", timeout=5)
        assert css.status_code == 200 and len(css.content) > 100
        assert requests.get(f"{base}/api/v1/backfills/", timeout=5).status_code == 401
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    log = access_log.read_text()
    assert f'"GET /healthz HTTP/1.1" {health.status_code}' in log and '"GET /accounts/login/ HTTP/1.1" 200' in log, stderr.decode()[-2000:]
