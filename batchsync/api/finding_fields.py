"""The findings fields of a day in the API's days list (kept apart: `outputs` imports it, not the views)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from rest_framework import serializers


class DayFindingFieldsSerializer(serializers.Serializer[Any]):
    """A day's findings in the days list: how many checks warned on it, and which."""

    findings = serializers.IntegerField(
        help_text=gettext_lazy("Data checks that left a warning on the day's rows (0: none).")
    )
    finding_checks = serializers.ListField(
        child=serializers.CharField(), help_text=gettext_lazy("Their names (see GET /api/v1/findings).")
    )
