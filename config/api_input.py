"""One place that turns unusable input into a 400 before any view sees it.

PostgreSQL cannot store or compare NUL characters and lone UTF-16 surrogates
(text, varchar and jsonb all refuse them), so a query parameter or JSON string
carrying one used to reach the database and come back as a 500. Deeply nested
JSON made the decoder recurse until Python gave up. Here:

- ``SafeJSONParser`` (every JSON body of the API): nesting deeper than
  ``MAX_JSON_DEPTH``, and NUL or lone surrogates in any key or string, are a 400;
- ``RejectUnsafeQueryParams`` (every request): the same characters in a query
  parameter's name or value are a 400.
"""

from __future__ import annotations

import re

from django.http import HttpResponseBadRequest, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32
UNSAFE_MESSAGE = "NUL (\\u0000) and lone surrogate (\\ud800-\\udfff) characters are not allowed"
UNSAFE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def unsafe(text: str) -> bool:
    return UNSAFE_CHARACTERS.search(text) is not None


def check_json(value) -> None:
    """Walk a decoded document without recursion; raise ParseError for what the database cannot hold."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if unsafe(item):
                raise ParseError(f"JSON string refused: {UNSAFE_MESSAGE}")
        elif isinstance(item, dict):
            for key, child in item.items():
                if unsafe(key):
                    raise ParseError(f"JSON key refused: {UNSAFE_MESSAGE}")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        check_json(data)
        return data


class RejectUnsafeQueryParams:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key, values in request.GET.lists():
            if unsafe(key) or any(unsafe(v) for v in values):
                message = f"query parameter {key.encode('unicode_escape').decode()!s}: {UNSAFE_MESSAGE}"
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": message}, status=400)
                return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)
