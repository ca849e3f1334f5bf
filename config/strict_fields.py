"""Serializer fields that refuse what Python would coerce but a client did not mean.

DRF's CharField turns ``0`` into ``"0"``; an API client that sends a number for a
title has a bug, and storing the string hides it. These fields take strings only,
refuse NUL and lone surrogates (PostgreSQL cannot store them), and say so in the
OpenAPI schema through a ``pattern``.
"""

from django.core.validators import RegexValidator
from rest_framework import serializers

# The pattern is valid in both Python and ECMAScript regexes, so the schema can carry it.
PRINTABLE_TEXT = RegexValidator(r"^[^\x00\ud800-\udfff]*$", "NUL and lone surrogate characters are not allowed.",
                                code="invalid_characters")


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string, not {kind}."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(PRINTABLE_TEXT)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", kind=type(data).__name__)
        return super().to_internal_value(data)
