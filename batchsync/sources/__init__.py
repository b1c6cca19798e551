"""Data sources behind one interface, looked up by name in `BATCHSYNC["SOURCES"]`."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.sources.base import BAR_COLUMNS, CsvPayload, DayPayload, RowsPayload, Source, SourceOption

__all__ = [
    "BAR_COLUMNS",
    "CsvPayload",
    "DayPayload",
    "RowsPayload",
    "Source",
    "SourceOption",
    "source_class_get",
    "source_get",
    "source_names",
    "source_options_check",
    "source_validate",
]

OPTION_KIND_NAMES = {
    str: gettext_lazy("string"),
    float: gettext_lazy("number"),
    int: gettext_lazy("integer"),
    bool: gettext_lazy("boolean"),
    list: gettext_lazy("list"),
}


def source_names() -> list[str]:
    """Names of the configured sources."""
    return sorted(get_settings().sources)


def source_class_get(name: str) -> type[Source]:
    """The class of the source called `name`; unknown names are an `InvalidJobRequest`."""
    sources = get_settings().sources
    if name not in sources:
        raise InvalidJobRequest(
            "source",
            _("Unknown source %(name)s; choose one of: %(names)s")
            % {"name": name, "names": ", ".join(sorted(sources))},
        )
    source_class: type[Source] = import_string(sources[name])
    return source_class


def source_get(name: str, options: dict[str, Any] | None = None) -> Source:
    """Build the source called `name` with `options` (as stored on a job: not checked again)."""
    return source_class_get(name)(**(options or {}))


def source_options_check(name: str, options: dict[str, Any]) -> None:
    """Refuse options the source does not declare, or of the wrong type, naming the option."""
    taken = source_class_get(name).options_taken
    if taken is None:
        return
    for option, value in options.items():
        spec = taken.get(option)
        if spec is None:
            raise InvalidJobRequest(
                option,
                _("The %(source)s source takes no option %(option)s (it takes: %(taken)s)")
                % {"source": name, "option": option[:60], "taken": ", ".join(sorted(taken)) or "-"},
            )
        if not spec.accepts(value):
            raise InvalidJobRequest(
                option,
                _("Option %(option)s of the %(source)s source must be a %(kind)s")
                % {
                    "option": option,
                    "source": name,
                    "kind": OPTION_KIND_NAMES.get(spec.kind, spec.kind.__name__),
                },
            )


def source_validate(name: str, options: dict[str, Any]) -> None:
    """Check a job's source before it is created: known, its options declared and typed, usable."""
    source_options_check(name, options)
    source_get(name, options).validate()
