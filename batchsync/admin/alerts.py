"""Alerts and their deliveries in the admin: a read-only list (alerts change only through services)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from batchsync.admin.readonly import _ReadOnlyAdmin
from batchsync.alert_models import Alert, AlertDelivery

if TYPE_CHECKING:
    DeliveryInlineBase = admin.TabularInline[AlertDelivery, Alert]
else:
    DeliveryInlineBase = admin.TabularInline


class AlertDeliveryInline(DeliveryInlineBase):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("channel", "target", "status", "attempts", "last_error", "created_at", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "scope",
        "job",
        "occurrences",
        "state",
        "deliveries_shown",
        "short_message",
    )
    list_filter = ("kind", "created_at")
    list_select_related = ("job",)
    search_fields = ("message", "scope", "job__task_id", "event_key")
    raw_id_fields = ("job", "schedule", "grouped_into", "resolved_by")
    date_hierarchy = "created_at"
    inlines = (AlertDeliveryInline,)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("deliveries")

    @admin.display(description=gettext_lazy("state"))
    def state(self, alert: Alert) -> str:
        if alert.grouped_into_id:
            return gettext("grouped into #%(id)s") % {"id": alert.grouped_into_id}
        if alert.resolved_by_id:
            return gettext("resolved by #%(id)s") % {"id": alert.resolved_by_id}
        return "-"

    @admin.display(description=gettext_lazy("deliveries"))
    def deliveries_shown(self, alert: Alert) -> str:
        return ", ".join(
            f"{d.get_channel_display()} {d.get_status_display()}" for d in alert.deliveries.all()
        )

    @admin.display(description=pgettext_lazy("column", "message"))
    def short_message(self, alert: Alert) -> str:
        return alert.message[:160]
