"""GET /api/v1/findings: the data checks' findings on loaded days (docs/checks.md)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import finding_selectors, selectors
from batchsync.api import envelopes, views
from batchsync.api import serializers as s
from batchsync.check_models import CheckSeverity, DayFinding
from batchsync.checks import CHECK_DESCRIPTIONS, CHECK_NAMES


class DayFindingListFilterSerializer(s.PageFilterSerializer):
    """Query parameters of GET /api/v1/findings."""

    job = serializers.CharField(
        required=False, max_length=80, help_text=gettext_lazy("Only days loaded by this job (task id).")
    )
    check = serializers.ChoiceField(
        choices=[(name, name) for name in CHECK_NAMES],
        required=False,
        help_text=gettext_lazy("Only this check's findings."),
    )
    severity = serializers.ChoiceField(
        choices=[(CheckSeverity.ERROR.value, "error"), (CheckSeverity.WARN.value, "warn")],
        required=False,
        help_text=gettext_lazy("Only findings of this severity."),
    )
    start_date = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"], help_text=gettext_lazy("First trade date, YYYY-MM-DD.")
    )
    end_date = serializers.DateField(
        required=False, input_formats=["%Y-%m-%d"], help_text=gettext_lazy("Last trade date, YYYY-MM-DD.")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": [_("end_date is before start_date")]})
        return attrs


class DayFindingOutputSerializer(serializers.Serializer[Any]):
    """One check's finding on one loaded day."""

    trade_date = serializers.DateField(help_text=gettext_lazy("The day."))
    check = serializers.CharField(source="check_name", help_text=gettext_lazy("The check's name."))
    description = serializers.SerializerMethodField(help_text=gettext_lazy("What the check asks."))
    severity = serializers.ChoiceField(
        choices=CheckSeverity.choices, help_text=gettext_lazy("warn: the day loaded with it.")
    )
    count = serializers.IntegerField(help_text=gettext_lazy("Rows flagged (row_count_band: the difference)."))
    examples = serializers.ListField(
        child=serializers.DictField(),
        help_text=gettext_lazy("Up to 5 flagged rows: ts_code and values as text."),
    )
    job = serializers.CharField(
        source="job.task_id", allow_null=True, default=None, help_text=gettext_lazy("Task id of the job.")
    )
    created_at = serializers.DateTimeField(help_text=gettext_lazy("When the day was checked."))

    def get_description(self, finding: DayFinding) -> str:
        return str(CHECK_DESCRIPTIONS.get(finding.check_name, ""))


DayFindingPageEnvelopeSerializer = envelopes._success_envelope(
    "DayFindingPageEnvelopeSerializer",
    envelopes._page(
        "DayFindingPageSerializer", DayFindingOutputSerializer, gettext_lazy("Findings, newest day first.")
    ),
    gettext_lazy("One page of findings."),
)


class DayFindingListApi(views.SyncApiView):
    """What the data checks found on loaded days, filtered."""

    @extend_schema(
        operation_id="findings_list",
        tags=["findings"],
        summary="Findings of the data checks",
        description=(
            "Warnings the data checks left on loaded days (a day that failed a check at error "
            "severity did not load; its error is in the job's errors), newest day first; filter "
            "by the job that loaded the day, the check, the severity and a range of trade dates."
        ),
        parameters=[DayFindingListFilterSerializer],
        responses={200: DayFindingPageEnvelopeSerializer, **views.READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = DayFindingListFilterSerializer(data=request.query_params.dict(), context=views.QUERY)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        job = selectors.sync_job_detail(data["job"]) if data.get("job") else None
        findings = finding_selectors.day_finding_list(
            job=job,
            check=data.get("check"),
            severity=data.get("severity"),
            start=data.get("start_date"),
            end=data.get("end_date"),
        )
        return self.paginated(request, findings, DayFindingOutputSerializer)
