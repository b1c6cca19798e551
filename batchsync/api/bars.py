"""GET /api/v1/bars/adjusted: one stock's loaded bars, raw or adjusted with `adj_factor` (qfq/hfq)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from batchsync.adjusted import adjusted_bars
from batchsync.api import envelopes, views
from batchsync.api import serializers as s
from batchsync.models import PriceAdjustment

TS_CODE = r"^[0-9A-Za-z]{1,8}\.[A-Za-z]{2,3}$"  # 000001.SZ, 600000.SH, 430047.BJ


READ_ERRORS = {code: answer for code, answer in views.READ_ERRORS.items() if code != 404}


class AdjustedBarsFilterSerializer(s.StrictInputSerializer):
    """Query parameters of GET /api/v1/bars/adjusted."""

    ts_code = serializers.RegexField(
        TS_CODE, max_length=12, help_text=gettext_lazy("The stock, e.g. 000001.SZ.")
    )
    start_date = serializers.DateField(
        input_formats=["%Y-%m-%d"], help_text=gettext_lazy("First day, YYYY-MM-DD.")
    )
    end_date = serializers.DateField(
        input_formats=["%Y-%m-%d"], help_text=gettext_lazy("Last day, YYYY-MM-DD.")
    )
    adjust = serializers.ChoiceField(
        choices=PriceAdjustment.choices,
        default=PriceAdjustment.NONE,
        help_text=gettext_lazy("none (raw), qfq (price x factor / latest factor) or hfq (price x factor)."),
    )


class AdjustedBarOutputSerializer(serializers.Serializer[Any]):
    """A day's prices as asked; null prices where no factor is loaded for the day."""

    trade_date = serializers.DateField(help_text=gettext_lazy("The trading day."))
    open = serializers.DecimalField(
        14, 4, allow_null=True, help_text=gettext_lazy("Open, adjusted as asked.")
    )
    high = serializers.DecimalField(
        14, 4, allow_null=True, help_text=gettext_lazy("High, adjusted as asked.")
    )
    low = serializers.DecimalField(14, 4, allow_null=True, help_text=gettext_lazy("Low, adjusted as asked."))
    close = serializers.DecimalField(
        14, 4, allow_null=True, help_text=gettext_lazy("Close, adjusted as asked.")
    )
    raw_close = serializers.DecimalField(14, 4, help_text=gettext_lazy("Close as loaded (unadjusted)."))
    adj_factor = serializers.DecimalField(
        20, 6, allow_null=True, help_text=gettext_lazy("The day's adj_factor; null when none is loaded.")
    )


# `{"status": "success", "data": [bar, ...]}`, built with type() as envelopes.py does: `data`
# as a field would shadow Serializer.data.
AdjustedBarsEnvelopeSerializer = type(
    "AdjustedBarsEnvelopeSerializer",
    (serializers.Serializer,),
    {
        "__module__": __name__,
        "status": serializers.ChoiceField(
            choices=envelopes.SUCCESS, help_text=gettext_lazy('Always "success".')
        ),
        "data": AdjustedBarOutputSerializer(
            many=True, help_text=gettext_lazy("The stock's bars in date order.")
        ),
    },
)


class AdjustedBarsApi(views.SyncApiView):
    """A stock's bars from the loaded days, adjusted when read."""

    @extend_schema(
        operation_id="bars_adjusted",
        tags=["bars"],
        summary="A stock's adjusted bars",
        description=(
            "The loaded bars of one stock in a date range, raw or adjusted with the loaded adj_factor "
            "(tushare source, with_adj_factor): hfq = price x factor, qfq = price x factor / the "
            "stock's latest loaded factor, 4 places."
        ),
        parameters=[AdjustedBarsFilterSerializer],
        responses={200: AdjustedBarsEnvelopeSerializer, **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = AdjustedBarsFilterSerializer(data=request.query_params.dict(), context=views.QUERY)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        bars = adjusted_bars(data["ts_code"], data["start_date"], data["end_date"], data["adjust"])
        rows = AdjustedBarOutputSerializer([asdict(bar) for bar in bars], many=True).data
        return views._success(rows)
