"""Refuse request bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE with 413 before anything reads them.

Django only enforces the limit when request.body or request.POST is read, and answers 400;
DRF's parsers read the stream directly and never trip it."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            message = f"Request body too large: {length} bytes, the limit is {limit}."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)
