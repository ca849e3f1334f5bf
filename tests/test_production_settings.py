"""Secure by default: production mode refuses insecure settings and passes Django's deploy checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "SEARCHSYNC_HTTPS", "SEARCHSYNC_HSTS"))}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "false", **env})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_passes_without_warnings_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="search.example.com",
                    SEARCHSYNC_HTTPS="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_missing_key_and_hosts():
    result = manage("check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "DJANGO_ALLOWED_HOSTS is empty" in result.stderr


def test_production_refuses_the_development_key():
    result = manage("check", DJANGO_SECRET_KEY="dev-only-insecure-key-change-me", DJANGO_ALLOWED_HOSTS="a.example")
    assert result.returncode != 0
    assert "development or weak key" in result.stderr


def test_https_setting_turns_on_secure_cookies_hsts_and_redirect():
    code = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER, s.DEBUG)")
    result = manage("shell", "-c", code, DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                    DJANGO_ALLOWED_HOSTS="a.example", SEARCHSYNC_HTTPS="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')", "False"]


def _bare_env() -> dict:
    """The environment of a newcomer's shell after `make up`: nothing of Django's exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SEARCHSYNC_HTTPS", "SEARCHSYNC_HSTS"))}


def test_manage_py_by_hand_in_a_checkout_needs_nothing_exported():
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_bare_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deployed_entry_points_still_refuse_insecure_defaults_in_that_checkout():
    for entry in ("import config.wsgi", "from config.celery import app; app.loader.import_default_modules()"):
        result = subprocess.run([sys.executable, "-c", entry], cwd=ROOT, env=_bare_env(), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode != 0, entry
        assert "Refusing to start with DJANGO_DEBUG off" in result.stderr, entry
