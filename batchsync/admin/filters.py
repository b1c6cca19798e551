"""List filters of the job list: by source, and by a day the range covers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync import sources


class SourceListFilter(admin.SimpleListFilter):
    title = gettext_lazy("source")
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [(name, name) for name in sources.source_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(source=value) if value else queryset


class CoversDateListFilter(admin.SimpleListFilter):
    """Jobs whose range contains a day: this year, last year, ... (or ?covers=YYYY-MM-DD)."""

    title = gettext_lazy("range covers")
    parameter_name = "covers"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        today = timezone.localdate()
        choices = [(today.isoformat(), str(_("today")))]
        choices += [(str(year), str(year)) for year in range(today.year, today.year - 5, -1)]
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if value.isdigit() and len(value) == 4:
            year = int(value)
            return queryset.filter(start_date__lte=dt.date(year, 12, 31), end_date__gte=dt.date(year, 1, 1))
        day = parse_date(value)
        if day is None:
            return queryset.none()
        return queryset.filter(start_date__lte=day, end_date__gte=day)
