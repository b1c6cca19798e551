"""Envelopes of successful answers, as named serializers: the OpenAPI schema's components.

The views build the same dicts (`{"status": "success", "data": ...}`); these only document them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from batchsync.api.outputs import (
    SyncDayOutputSerializer,
    SyncErrorOutputSerializer,
    SyncJobPlanOutputSerializer,
    SyncJobProgressOutputSerializer,
    SyncJobStartOutputSerializer,
    SyncJobUpToDateOutputSerializer,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

SUCCESS = [("success", "success")]


def _success_envelope(
    name: str, data: type[serializers.Serializer[Any]], help_text: StrOrPromise
) -> type[serializers.Serializer[Any]]:
    """`{"status": "success", "data": <data>}` as a named class: the schema's component name."""
    status = serializers.ChoiceField(choices=SUCCESS, help_text=gettext_lazy('Always "success".'))
    fields = {"status": status, "data": data(help_text=help_text)}
    return type(name, (serializers.Serializer,), {"__module__": __name__, **fields})


def _page(
    name: str, results: type[serializers.Serializer[Any]], help_text: StrOrPromise
) -> type[serializers.Serializer[Any]]:
    """One page of a list (`count`, `next`, `previous`, `results`), as the pagination answers."""
    fields = {
        "count": serializers.IntegerField(help_text=gettext_lazy("Items in all pages.")),
        "next": serializers.URLField(allow_null=True, help_text=gettext_lazy("URL of the next page.")),
        "previous": serializers.URLField(
            allow_null=True, help_text=gettext_lazy("URL of the previous page.")
        ),
        "results": results(many=True, help_text=help_text),
    }
    return type(name, (serializers.Serializer,), {"__module__": __name__, **fields})


SyncJobStartEnvelopeSerializer = _success_envelope(
    "SyncJobStartEnvelopeSerializer",
    SyncJobStartOutputSerializer,
    gettext_lazy("The started (or queued) job."),
)
SyncJobUpToDateEnvelopeSerializer = _success_envelope(
    "SyncJobUpToDateEnvelopeSerializer",
    SyncJobUpToDateOutputSerializer,
    gettext_lazy("A latest start with nothing to load."),
)
SyncJobPlanEnvelopeSerializer = _success_envelope(
    "SyncJobPlanEnvelopeSerializer", SyncJobPlanOutputSerializer, gettext_lazy("The plan of a dry run.")
)
SyncJobProgressEnvelopeSerializer = _success_envelope(
    "SyncJobProgressEnvelopeSerializer", SyncJobProgressOutputSerializer, gettext_lazy("The job's progress.")
)
SyncJobPageEnvelopeSerializer = _success_envelope(
    "SyncJobPageEnvelopeSerializer",
    _page("SyncJobPageSerializer", SyncJobProgressOutputSerializer, gettext_lazy("Jobs, newest first.")),
    gettext_lazy("One page of jobs."),
)
SyncDayPageEnvelopeSerializer = _success_envelope(
    "SyncDayPageEnvelopeSerializer",
    _page("SyncDayPageSerializer", SyncDayOutputSerializer, gettext_lazy("Days in date order.")),
    gettext_lazy("One page of days."),
)
SyncErrorPageEnvelopeSerializer = _success_envelope(
    "SyncErrorPageEnvelopeSerializer",
    _page("SyncErrorPageSerializer", SyncErrorOutputSerializer, gettext_lazy("Errors, newest first.")),
    gettext_lazy("One page of errors."),
)
