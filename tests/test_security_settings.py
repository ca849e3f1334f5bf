"""Real users' passwords pass Django's four standard validators; demo logins are dev-only and
created only on request (bootstrap --demo-users, or SEARCHSYNC_DEMO_USERS with docker compose)."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

ROOT = Path(__file__).resolve().parent.parent


def test_the_four_standard_password_validators_apply():
    names = {v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS}
    assert names == {"UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                     "NumericPasswordValidator"}
    for weak in ("admin", "password", "12345678901", "admin2"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct horse battery staple 42")


def test_docker_compose_creates_demo_logins_only_when_asked():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "bootstrap --demo-users" not in compose
    assert "${SEARCHSYNC_DEMO_USERS:+--demo-users}" in compose
