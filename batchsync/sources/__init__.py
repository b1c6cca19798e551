"""Data sources behind one interface, looked up by name in `BATCHSYNC["SOURCES"]`."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, DayPayload, RowsPayload, Source

__all__ = [
    "BAR_COLUMNS",
    "CsvPayload",
    "DayPayload",
    "RowsPayload",
    "Source",
    "source_get",
    "source_names",
]


def source_names() -> list[str]:
    """Names of the configured sources."""
    return sorted(get_settings().sources)


def source_get(name: str, options: dict[str, Any] | None = None) -> Source:
    """Build the source called `name` with `options`; unknown names are an `InvalidJobRequest`."""
    sources = get_settings().sources
    if name not in sources:
        raise InvalidJobRequest(
            "source",
            _("Unknown source %(name)s; choose one of: %(names)s")
            % {"name": name, "names": ", ".join(sorted(sources))},
        )
    source_class: type[Source] = import_string(sources[name])
    return source_class(**(options or {}))
