"""The audit trail: who did what, when, from where, with which outcome.

Every app may import it (it imports none of them). Operator and admin actions call
``audit.record(actor, action, ...)``; rows are append-only.
"""


def record(*args, **kwargs):
    from .trail import record as _record

    return _record(*args, **kwargs)


def client_ip(request):
    from .trail import client_ip as _client_ip

    return _client_ip(request)
