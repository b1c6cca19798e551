"""The admin's start form: the API's start options as a form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from batchsync import bounds, services, sources
from batchsync.conf import get_settings
from batchsync.models import Reprocess
from batchsync.sources.postgres import upstream_has_password

POSTGRES_OPTIONS = ("source_url", "table", "query", "columns")  # the postgres source's, when filled in
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class UpstreamUrlInput(forms.TextInput):
    """A text input that never renders back a URL carrying a password (the form refuses it)."""

    def format_value(self, value: Any) -> str | None:
        shown = super().format_value(value)
        return "" if shown and upstream_has_password(shown) else shown


class SyncJobStartForm(forms.Form):
    """The start options as a form; the request is built and checked by `services.sync_request_build`."""

    start_date = forms.DateField(label=gettext_lazy("start date"), widget=DATE_INPUT, required=False)
    end_date = forms.DateField(label=gettext_lazy("end date"), widget=DATE_INPUT, required=False)
    latest = forms.BooleanField(
        label=gettext_lazy("latest"),
        required=False,
        help_text=gettext_lazy(
            "Instead of dates: from the day after the newest day loaded from the source to the "
            "latest trading day published by now."
        ),
    )
    lookback_days = forms.IntegerField(
        label=gettext_lazy("look-back trading days"),
        required=False,
        **bounds.LOOKBACK_DAYS.limits,
        help_text=gettext_lazy("With latest: trading days before the newest loaded one reloaded too."),
    )
    source = forms.ChoiceField(label=gettext_lazy("source"))
    path = forms.CharField(
        label=gettext_lazy("path"),
        required=False,
        help_text=gettext_lazy("Directory of one CSV file per day (csv source only)."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    with_adj_factor = forms.BooleanField(
        label=gettext_lazy("with adjustment factors"),
        required=False,
        help_text=gettext_lazy("Also load each day's adj_factor with its bars (tushare source only)."),
    )
    source_url = forms.CharField(
        label=gettext_lazy("upstream URL"),
        required=False,
        help_text=gettext_lazy("postgres source: postgresql://user@host/db, without a password."),
        widget=UpstreamUrlInput(attrs={"size": 60}),
    )
    table = forms.CharField(label=gettext_lazy("upstream table"), required=False)
    query = forms.CharField(
        label=gettext_lazy("upstream query"),
        required=False,
        help_text=gettext_lazy(
            "postgres source, instead of a table: a query selecting %(trade_date)s's bars."
        ),
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )
    columns = forms.CharField(
        label=gettext_lazy("column mapping"),
        required=False,
        help_text=gettext_lazy("postgres source: ours=theirs,... (e.g. ts_code=code,vol=volume)."),
    )
    reprocess = forms.ChoiceField(
        label=gettext_lazy("reprocess"),
        choices=Reprocess.choices,
        initial=Reprocess.FAILED,
        help_text=gettext_lazy("Which days load again when a day of the range was loaded or tried before."),
    )
    force = forms.BooleanField(
        label=gettext_lazy("force reload"),
        required=False,
        help_text=gettext_lazy("Reload days that are already loaded (the same as reprocess = all days)."),
    )
    parallelism = forms.IntegerField(
        label=gettext_lazy("parallelism"),
        **bounds.PARALLELISM.limits,
        help_text=gettext_lazy("Days loaded at once (workers on the cluster)."),
    )
    priority = forms.IntegerField(
        label=gettext_lazy("priority"),
        initial=0,
        **bounds.PRIORITY.limits,
        help_text=gettext_lazy("A higher number runs first."),
    )
    queue = forms.BooleanField(
        label=gettext_lazy("queue"),
        required=False,
        help_text=gettext_lazy("Queue behind a running job instead of refusing to start."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sources.source_names()
        source_field = self.fields["source"]
        assert isinstance(source_field, forms.ChoiceField)
        source_field.choices = [(name, name) for name in names]
        source_field.initial = get_settings().default_source
        self.fields["parallelism"].initial = get_settings().default_parallelism

    def clean(self) -> dict[str, Any]:
        """The dates are required unless `latest` computes them."""
        data = super().clean() or {}
        if not data.get("latest"):
            for name in ("start_date", "end_date"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, self.fields[name].error_messages["required"])
        return data

    def job_request(self, *, requested_by: str) -> services.JobRequest:
        """The validated request of the cleaned form; `InvalidJobRequest` names the field.

        With `latest` and nothing to load, `SyncUpToDate` (a success: the view says so).
        """
        data = self.cleaned_data
        # The reprocess menu always has a value: left at its default, "force" decides alone.
        forced_default = data["force"] and data["reprocess"] == Reprocess.FAILED
        return services.sync_request_build(
            start_date=data["start_date"],
            end_date=data["end_date"],
            latest=data["latest"],
            lookback_days=data["lookback_days"],
            source=data["source"],
            source_options={
                name: data[name] for name in (*POSTGRES_OPTIONS, "with_adj_factor") if data.get(name)
            },
            path=data.get("path") or None,
            force=data["force"],
            reprocess=None if forced_default else data["reprocess"],
            parallelism=data["parallelism"],
            priority=data["priority"],
            queue=data["queue"],
            requested_by=requested_by,
        )
