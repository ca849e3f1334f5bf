"""Writing the trail: ``record`` and the request context it reads the address (and, for
calls without an actor, the user) from."""

from __future__ import annotations

import contextvars
import logging

from django.conf import settings

from .models import AuditEvent

log = logging.getLogger(__name__)

_current_request: contextvars.ContextVar = contextvars.ContextVar("audit_request", default=None)
MAX_IDS = 1000


def current_request():
    return _current_request.get()


def client_ip(request) -> str | None:
    """The client's address; behind SEARCHSYNC_TRUSTED_PROXIES proxies, taken from X-Forwarded-For
    counting from the right (the entries a client sends itself come first and are not trusted)."""
    if request is None:
        return None
    proxies = getattr(settings, "SEARCHSYNC_TRUSTED_PROXIES", 0)
    if proxies:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def _actor(actor, request):
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is None:
        return "", None
    if isinstance(actor, str):
        return actor[:150], None
    if not getattr(actor, "is_authenticated", False):
        return "", None
    return actor.get_username()[:150], actor.pk


def record(actor, action: str, target="", *, details: dict | None = None, outcome: str = AuditEvent.Outcome.OK,
           request=None) -> AuditEvent:
    """Append one event. ``actor`` is a user, a username, or None (the current request's user, else the system)."""
    request = request if request is not None else _current_request.get()
    username, user_id = _actor(actor, request)
    details = dict(details or {})
    if isinstance(details.get("ids"), (list, tuple)) and len(details["ids"]) > MAX_IDS:
        details["ids_total"] = len(details["ids"])
        details["ids"] = list(details["ids"])[:MAX_IDS]
    return AuditEvent.objects.create(actor=username, actor_id=user_id, ip_address=client_ip(request), action=action,
                                     target=str(target)[:255], details=details, outcome=outcome)


class AuditContextMiddleware:
    """Makes the current request available to ``record`` calls made deep in the service layer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)
