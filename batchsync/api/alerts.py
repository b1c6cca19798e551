"""GET /api/v1/alerts: every alert, newest first, with its deliveries (docs/api.md, docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync import alert_selectors
from batchsync.alert_models import AlertKind
from batchsync.api.alert_outputs import AlertOutputSerializer
from batchsync.api.envelopes import _page, _success_envelope
from batchsync.api.serializers import PageFilterSerializer
from batchsync.api.views import QUERY, READ_ERRORS, SyncApiView, _query

VIEW_ALERTS = "batchsync.view_alert"


class AlertListFilterSerializer(PageFilterSerializer):
    """Query parameters of GET /api/v1/alerts."""

    kind = serializers.ChoiceField(
        choices=AlertKind.choices, required=False, help_text=gettext_lazy("Only alerts of this kind.")
    )
    open = serializers.BooleanField(
        required=False, help_text=gettext_lazy("true: only open incidents (sent, not yet resolved).")
    )


AlertPageEnvelopeSerializer = _success_envelope(
    "AlertPageEnvelopeSerializer",
    _page("AlertPageSerializer", AlertOutputSerializer, gettext_lazy("Alerts, newest first.")),
    gettext_lazy("One page of alerts."),
)


class AlertListApi(SyncApiView):
    """Every alert, with each channel's delivery: what was sent, grouped, resolved."""

    required_permissions = {"GET": (VIEW_ALERTS,)}

    @extend_schema(
        operation_id="alerts_list",
        tags=["alerts"],
        summary="List alerts",
        description=(
            "Alerts newest first: job failed, failed days, stalled, deadline missed, recovered and "
            "test alerts, each with its deliveries (channel, status, attempts, last error). Repeats "
            "of an open incident are listed with `grouped_into` and were not sent."
        ),
        parameters=[AlertListFilterSerializer],
        responses={200: AlertPageEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        filters = AlertListFilterSerializer(data=_query(request), context=QUERY)
        filters.is_valid(raise_exception=True)
        data: dict[str, Any] = filters.validated_data
        alerts = alert_selectors.alert_list(kind=data.get("kind"), open_only=bool(data.get("open")))
        return self.paginated(request, alerts, AlertOutputSerializer)
