"""The provenance fields of a day in the API: what `daily_bar` holds for it, and from where."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers


class LoadedDayFieldsSerializer(serializers.Serializer[Any]):
    """Fields of `selectors.sync_day_list`'s provenance; null when nothing is recorded for the day."""

    loaded_source = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("The source whose rows the day holds now.")
    )
    loaded_rows = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("Rows the day holds now."))
    loaded_checksum = serializers.CharField(
        allow_null=True,
        help_text=gettext_lazy("md5 over the day's rows, computed by PostgreSQL; same rows, same checksum."),
    )
    loaded_by_job = serializers.CharField(
        allow_null=True, help_text=gettext_lazy("Task id of the job that loaded them.")
    )
    loaded_at = serializers.DateTimeField(allow_null=True, help_text=gettext_lazy("When they were loaded."))
