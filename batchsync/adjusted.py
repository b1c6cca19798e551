"""Selectors of adjusted prices: raw bars times `adj_factor`, adjusted when read, never stored."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils.translation import gettext as _

from batchsync import sql
from batchsync.exceptions import InvalidJobRequest
from batchsync.models import PriceAdjustment

ADJUSTED_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class AdjustedBar:
    """A stock's prices on a day as asked (`mode`), with the raw close and the day's factor."""

    trade_date: dt.date
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    raw_close: Decimal
    adj_factor: Decimal | None  # None: no factor loaded for the day, so no adjusted price


def adjusted_bars(
    ts_code: str, start: dt.date, end: dt.date, mode: str = PriceAdjustment.QFQ
) -> list[AdjustedBar]:
    """`ts_code`'s bars from `start` to `end`: hfq = price x factor, qfq = hfq / the stock's latest factor.

    The latest factor is the one of the latest day loaded for the stock (tushare's own qfq
    divides by the newest factor), so qfq history moves after each new ex-rights day.
    """
    if mode not in PriceAdjustment.values:
        raise InvalidJobRequest(
            "adjust", _("adjust must be one of: %(modes)s") % {"modes": ", ".join(PriceAdjustment.values)}
        )
    if start > end:
        raise InvalidJobRequest("end_date", _("end_date must not be before start_date"))
    with connection.cursor() as cursor:
        divisor: Decimal | None = Decimal(1)
        if mode == PriceAdjustment.QFQ:
            cursor.execute(sql.ADJ_FACTOR_LATEST, [ts_code])
            latest = cursor.fetchone()
            divisor = latest[0] if latest else None
        cursor.execute(
            sql.ADJUSTED_BARS, {"ts_code": ts_code, "start": start, "end": end, "divisor": divisor}
        )
        rows = cursor.fetchall()
    bars = []
    for trade_date, raw_open, raw_high, raw_low, raw_close, factor, *adjusted in rows:
        open_, high, low, close = (
            (raw_open, raw_high, raw_low, raw_close) if mode == PriceAdjustment.NONE else adjusted
        )
        bars.append(AdjustedBar(trade_date, open_, high, low, close, raw_close=raw_close, adj_factor=factor))
    return bars
