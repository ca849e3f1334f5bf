"""Logins into the audit trail: successes, failures and lockouts (axes counts and locks).

Anyone can send failed logins, as many as they like: failures and lockouts are recorded bounded
(``audit.bounded``), one row per username and address and window, the repeats counted and summarised."""

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse

import audit
from audit.bounded import repeatable
from audit.models import AuditEvent
from audit.trail import current_request

from .address_lockout import address_blocked

FAILED_LOGIN = repeatable("login.failed", AuditEvent.Outcome.FAILED)
LOCKED_OUT = repeatable("login.locked_out", AuditEvent.Outcome.REFUSED)


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs):
    audit.record(user, "login.success", f"user:{user.get_username()}", request=request)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    username = (credentials or {}).get("username", "") or ""
    FAILED_LOGIN.record(username, f"user:{username}", request=request,
                        key={"username": username, "ip_address": audit.client_ip(request)})


@receiver(user_locked_out, dispatch_uid="audit-locked-out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    # An address over its own limit is one lockout, whichever usernames it goes on trying.
    if address_blocked(request):
        key, scope = {"ip_address": ip_address}, "address"
    else:
        key, scope = {"username": username or "", "ip_address": ip_address}, "username and address"
    LOCKED_OUT.record(username or "", f"user:{username}", request=request, key=key,
                      details={"ip_address": ip_address, "scope": scope})


@receiver(post_delete, sender=AccessAttempt, dispatch_uid="audit-lockout-lifted")
def _lockout_lifted(sender, instance, **kwargs):
    # An admin lifting a lockout (admin page or `manage.py axes_reset`) deletes the attempts;
    # axes also deletes them itself when they expire or a login succeeds, which is not an action.
    request = current_request()
    if request is not None and not request.path.startswith(reverse("admin:index")):
        return
    audit.record(None, "login.lockout_lifted", f"user:{instance.username}",
                 details={"ip_address": instance.ip_address, "failures": instance.failures_since_start})
