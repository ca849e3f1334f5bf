"""A Content-Security-Policy header on every answer (Django 5.2 has none of its own).

The console's pages load their scripts and styles from this site only: htmx, the console's own
script (static/js/console.js, no inline handlers) and the Swagger UI, whose start-up script the split
view serves as a file. Inline styles stay allowed: htmx adds its indicator styles, progress bars set
their width in a style attribute, and the Swagger UI and the Django admin use some. Scripts, the
thing a policy is mostly for, run from 'self' only; nothing may frame the console.
SEARCHSYNC_CONTENT_SECURITY_POLICY replaces the policy (empty: no header).
"""

from django.conf import settings

DEFAULT_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "SEARCHSYNC_CONTENT_SECURITY_POLICY", None)
        policy = DEFAULT_POLICY if policy is None else policy
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
