"""Strict body fields: a JSON body says what it means, in the types the docs give (docs/api.md).

DRF's own fields are lenient for HTML forms: `"yes"` and `0` are booleans, `"5"` is an integer,
`20251001` is a date. The API takes JSON only, so its bodies are held to JSON's types.
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class IsoDateField(serializers.DateField):
    """A date written YYYY-MM-DD, nothing else (Python would also read 20251001 and 2025-W40-3)."""

    def to_internal_value(self, value: Any) -> Any:
        if not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class JsonBooleanField(serializers.BooleanField):
    """`true` or `false`, nothing else (not "yes", "1", 0)."""

    default_error_messages = {"invalid": gettext_lazy("Must be true or false (a JSON boolean).")}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid")
        raise AssertionError  # pragma: no cover - fail() raises


class JsonIntegerField(serializers.IntegerField):
    """A JSON integer, not a string of digits, a float or a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        value: int = super().to_internal_value(data)
        return value


class JsonStringField(serializers.CharField):
    """A JSON string, not a number turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]})
class JsonScalarField(serializers.Field):  # type: ignore[type-arg]
    """A string, number or boolean, kept in its JSON type (a source's option value)."""

    default_error_messages = {"invalid": gettext_lazy("Must be a string, a number or a boolean.")}
    MAX_STRING = 1000

    def to_internal_value(self, data: Any) -> str | int | float | bool:
        if not isinstance(data, str | int | float | bool):
            self.fail("invalid")
        if isinstance(data, str):
            if len(data) > self.MAX_STRING:
                raise serializers.ValidationError(
                    gettext_lazy("Ensure this field has no more than %(max)s characters.")
                    % {"max": self.MAX_STRING}
                )
            if "\x00" in data:
                self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value
