"""API tokens for scripts and other clients: create (the secret is shown once), list, revoke.

Tokens are knox AuthTokens: only a SHA-512 digest is stored, so a database leak gives
no usable token. Expired tokens are refused (401) and deleted by knox on next use.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from knox.models import AuthToken

import audit

from .models import TokenLabel

EXPIRY_DAYS = (1, 7, 30, 90, 365)


def create(user, name: str, days: int) -> tuple[AuthToken, str]:
    """A new token for ``user``; returns it and its secret, which is never available again."""
    with transaction.atomic():
        token, secret = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
        TokenLabel.objects.create(token=token, name=name)
        audit.record(user, "token.create", f"token:{token.token_key}",
                     details={"name": name, "expires": token.expiry.isoformat(), "days": days})
    return token, secret


def owned_by(user):
    return (AuthToken.objects.filter(user=user).select_related("label").order_by("-created"))


def revoke(user, token_key: str) -> int:
    """Delete the user's token(s) with this key (the public first characters of the secret)."""
    with transaction.atomic():
        tokens = list(AuthToken.objects.filter(user=user, token_key=token_key).select_related("label"))
        for token in tokens:
            name = getattr(getattr(token, "label", None), "name", "")
            token.delete()
            audit.record(user, "token.revoke", f"token:{token_key}", details={"name": name})
    return len(tokens)
