"""Days, errors and trading calendars: shown, never written by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy, pgettext_lazy

from batchsync.admin.job_views import can_view_traceback
from batchsync.admin.verify import VERIFY_DAY_ACTIONS, has_verify_permission
from batchsync.models import LoadedDay, SyncDay, SyncError, TradingCalendar

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; at run time it is not subscriptable
    ReadOnlyAdminBase = admin.ModelAdmin[Any]
else:
    ReadOnlyAdminBase = admin.ModelAdmin


class _ReadOnlyAdmin(ReadOnlyAdminBase):
    """Shown, never written by hand: rows change only through the services."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SyncDay)
class SyncDayAdmin(_ReadOnlyAdmin):
    list_display = (
        "date",
        "job",
        "status",
        "skip_reason",
        "rows",
        "duration_seconds",
        "attempts",
        "short_error",
    )
    list_filter = ("status", "skip_reason")
    list_select_related = ("job",)
    search_fields = ("job__task_id",)
    date_hierarchy = "date"
    raw_id_fields = ("job",)
    exclude = ("worker_id", "lease_expires_at", "fence")

    @admin.display(description=pgettext_lazy("column", "error"))
    def short_error(self, day: SyncDay) -> str:
        return day.last_error[:120]


@admin.register(SyncError)
class SyncErrorAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "job", "date", "attempt", "error", "file", "line")
    list_filter = ("created_at",)
    list_select_related = ("job",)
    search_fields = ("job__task_id", "error")
    raw_id_fields = ("job", "day")
    fields = ("job", "day", "date", "attempt", "created_at", "error", "file", "line", "traceback_block")
    readonly_fields = ("traceback_block",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        return fields if can_view_traceback(request) else [f for f in fields if f != "traceback_block"]

    @admin.display(description=gettext_lazy("traceback"))
    def traceback_block(self, error: SyncError) -> SafeString:
        return format_html('<pre class="bs-traceback">{}</pre>', error.traceback or "-")


@admin.register(TradingCalendar)
class TradingCalendarAdmin(_ReadOnlyAdmin):
    """Which exchange calendars are stored, from which exchange_calendars, and up to when."""

    list_display = ("name", "first_session", "last_session", "session_count", "source_version", "stored_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TradingCalendar]:
        calendars: QuerySet[TradingCalendar] = super().get_queryset(request)
        return calendars.annotate(session_count=Count("sessions"))

    @admin.display(description=gettext_lazy("trading sessions"), ordering="session_count")
    def session_count(self, calendar: TradingCalendar) -> int:
        return int(getattr(calendar, "session_count", 0))


@admin.register(LoadedDay)
class LoadedDayAdmin(_ReadOnlyAdmin):
    """What `daily_bar` holds for each day: the source, options fingerprint and job that loaded it."""

    list_display = ("trade_date", "source", "rows", "checksum", "job", "loaded_at", "options_fingerprint")
    list_filter = ("source",)
    list_select_related = ("job",)
    search_fields = ("job__task_id", "source", "checksum")
    date_hierarchy = "trade_date"
    raw_id_fields = ("job",)
    actions = VERIFY_DAY_ACTIONS

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return has_verify_permission(request)
