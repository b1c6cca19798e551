"""The API's JSON parser: one meaning per body, and a 400 (not a crash) for any body at all."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (which value was meant is anyone's guess)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(_("duplicate key %(key)s") % {"key": json.dumps(key)[:80]})
        found[key] = value
    return found


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, plus: duplicate keys refused, nesting too deep for Python a 400."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            reader: Any = codecs.getreader(encoding)(stream)  # Django keeps only a charset Python knows
            return json.load(reader, object_pairs_hook=_object_without_duplicate_keys)
        except RecursionError:
            raise ParseError(_("JSON parse error - nested too deeply")) from None
        except ValueError as error:
            raise ParseError(_("JSON parse error - %(reason)s") % {"reason": error}) from None
