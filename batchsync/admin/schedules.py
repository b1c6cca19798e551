"""Sync schedules in the admin: list with last run, outcome and next run; edits through services."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from batchsync import schedule_selectors, services
from batchsync.exceptions import BatchSyncError, InvalidJobRequest
from batchsync.models import SyncSchedule

if TYPE_CHECKING:  # django-stubs makes these generic; at run time they are not subscriptable
    ScheduleFormBase = forms.ModelForm[SyncSchedule]
    ScheduleAdminBase = admin.ModelAdmin[SyncSchedule]
else:
    ScheduleFormBase = forms.ModelForm
    ScheduleAdminBase = admin.ModelAdmin

SETTINGS = (
    "name",
    "cron",
    "source",
    "source_options",
    "lookback_days",
    "parallelism",
    "priority",
    "paused",
    "freshness_deadline",
)


class SyncScheduleForm(ScheduleFormBase):
    """The schedule's settings, checked by `services.schedule_spec_validate` (errors on their field)."""

    class Meta:
        model = SyncSchedule
        fields = SETTINGS
        help_texts = {
            "cron": gettext_lazy(
                "Five fields in the exchange's time zone, e.g. 30 18 * * 1-5 (weekdays 18:30)."
            ),
            "source_options": gettext_lazy('JSON, e.g. {"path": "/data/daily"}; never secrets.'),
            "freshness_deadline": gettext_lazy("HH:MM: the latest trading day loaded by then (alerts)."),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        values: dict[str, Any] = {name: data.get(name) for name in SETTINGS}
        spec = services.ScheduleSpec(**values)
        try:
            checked = services.schedule_spec_validate(_with_defaults(spec), confine_paths=True)
        except InvalidJobRequest as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
            return data
        data.update(cron=checked.cron, source=checked.source, source_options=checked.source_options)
        return data


def _with_defaults(spec: services.ScheduleSpec) -> services.ScheduleSpec:
    """Empty form values as the spec's defaults (no options, priority 0)."""
    return replace(spec, source_options=dict(spec.source_options or {}), priority=spec.priority or 0)


@admin.register(SyncSchedule)
class SyncScheduleAdmin(ScheduleAdminBase):
    """Schedules: each with its last run (job link), outcome and next run; saved through services."""

    form = SyncScheduleForm
    list_display = ("name", "cron", "source", "paused", "next_run", "last_run_at", "last_job_link", "outcome")
    list_filter = ("paused", "source")
    search_fields = ("name",)
    readonly_fields = ("next_run", "last_run_at", "last_job_link", "outcome", "last_message")
    actions = ("pause_schedules", "resume_schedules", "run_schedules_now")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncSchedule]:
        return super().get_queryset(request).select_related("last_job")

    @admin.display(description=gettext_lazy("next run"), ordering="next_run_at")
    def next_run(self, schedule: SyncSchedule) -> str:
        facts = schedule_selectors.sync_schedule_facts(schedule)
        moment = facts["next_run_at"]
        return f"{moment:%Y-%m-%d %H:%M} {facts['timezone']}" if moment else "-"

    @admin.display(description=gettext_lazy("last job"))
    def last_job_link(self, schedule: SyncSchedule) -> SafeString | str:
        job = schedule.last_job
        if job is None:
            return "-"
        url = reverse("admin:batchsync_syncjob_change", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.task_id)

    @admin.display(description=gettext_lazy("outcome"))
    def outcome(self, schedule: SyncSchedule) -> str:
        return schedule_selectors.sync_schedule_outcome(schedule)

    def save_model(self, request: HttpRequest, obj: SyncSchedule, form: Any, change: bool) -> None:
        """Create or update through the services (the next run follows the cron)."""
        values = {name: form.cleaned_data[name] for name in SETTINGS}
        if change:
            saved = services.sync_schedule_update(form.initial["name"], values)
        else:
            saved = services.sync_schedule_create(_with_defaults(services.ScheduleSpec(**values)))
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: SyncSchedule) -> None:
        services.sync_schedule_delete(obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SyncSchedule]) -> None:
        for schedule in queryset:
            services.sync_schedule_delete(schedule.name)

    def _each(self, request: HttpRequest, queryset: QuerySet[SyncSchedule], action: str) -> None:
        for schedule in queryset:
            try:
                if action == "pause":
                    services.sync_schedule_pause(schedule.name)
                    self.message_user(request, _("%(name)s paused") % {"name": schedule.name})
                elif action == "resume":
                    services.sync_schedule_resume(schedule.name)
                    self.message_user(request, _("%(name)s resumed") % {"name": schedule.name})
                else:
                    run = services.sync_schedule_run_now(schedule.name)
                    self.message_user(request, f"{schedule.name}: {run.message}")
            except BatchSyncError as error:
                self.message_user(request, f"{schedule.name}: {error.message}", messages.ERROR)

    @admin.action(description=gettext_lazy("Pause selected schedules"), permissions=["change"])
    def pause_schedules(self, request: HttpRequest, queryset: QuerySet[SyncSchedule]) -> None:
        self._each(request, queryset, "pause")

    @admin.action(description=gettext_lazy("Resume selected schedules"), permissions=["change"])
    def resume_schedules(self, request: HttpRequest, queryset: QuerySet[SyncSchedule]) -> None:
        self._each(request, queryset, "resume")

    @admin.action(description=gettext_lazy("Run selected schedules now"), permissions=["change"])
    def run_schedules_now(self, request: HttpRequest, queryset: QuerySet[SyncSchedule]) -> None:
        self._each(request, queryset, "run-now")
