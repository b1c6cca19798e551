"""The bars' numeric columns: exact as sent, bounded by constraints instead of rounded by a typmod.

A `numeric(14,4)` column rounds `10.12345` to `10.1235` without a word, and PostgreSQL sorts
`NaN` above every number, so `NaN` passed `low <= high` and `vol >= 0`. The bars' numeric
columns are therefore plain `numeric` (nothing is rounded on the way in), and one CHECK per
column refuses NaN, out-of-range and negative or non-positive values, and more decimals than
the column keeps. COPY names the failing line and the constraint names the column
(`loader`), so the day fails with file, line and column and its old rows stay.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.functions import Round


class ExactDecimalField(models.DecimalField):  # type: ignore[type-arg]
    """A DecimalField stored as unconstrained `numeric`; its scale is enforced by `bar_value_check`."""

    def db_type(self, connection: Any) -> str:
        return "numeric"


def bar_value_check(
    column: str, *, scale: int, digits: int, low: str, nullable: bool = False
) -> models.CheckConstraint:
    """`daily_bar_<column>_valid`: a number (never NaN) above or at `low`, at most `scale` decimals.

    `low` is `"gt0"` (prices), `"gte0"` (vol, amount) or `"any"` (change, pct_chg: any sign).
    The upper bound (`10 ** (digits - scale)`, the old typmod's range) also refuses NaN, which
    PostgreSQL sorts above every number.
    """
    bound = Decimal(10) ** (digits - scale)
    valid = Q(**{f"{column}__lt": bound}) & Q(**{column: Round(column, scale)})
    if low == "gt0":
        valid &= Q(**{f"{column}__gt": 0})
    elif low == "gte0":
        valid &= Q(**{f"{column}__gte": 0})
    else:
        valid &= Q(**{f"{column}__gt": -bound})
    if nullable:
        valid |= Q(**{f"{column}__isnull": True})
    return models.CheckConstraint(condition=valid, name=f"daily_bar_{column}_valid")
