"""Adjustment factors beside the raw bars (tushare `adj_factor`), and how read prices are adjusted."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PriceAdjustment(models.TextChoices):
    """How read prices are adjusted with `adj_factor`: none, forward (qfq) or back (hfq)."""

    NONE = "none", _("unadjusted")
    QFQ = "qfq", _("forward-adjusted (qfq)")
    HFQ = "hfq", _("back-adjusted (hfq)")


class AdjFactor(models.Model):
    """A stock's tushare `adj_factor` on a day: hfq price = price x factor, qfq = hfq / latest factor.

    Kept beside the raw bars, never applied to them: forward-adjusted history changes after
    every corporate action, so prices are adjusted when read (`selectors.adjusted_bars`).
    """

    pk = models.CompositePrimaryKey("trade_date", "ts_code")
    trade_date = models.DateField()
    ts_code = models.CharField(max_length=12, db_collation="C")
    adj_factor = models.DecimalField(max_digits=20, decimal_places=6)

    class Meta:
        db_table = "adj_factor"
        verbose_name = _("adjustment factor")
        verbose_name_plural = _("adjustment factors")
        constraints = [
            models.CheckConstraint(condition=Q(adj_factor__gt=0), name="adj_factor_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_date} {self.ts_code} {self.adj_factor}"
