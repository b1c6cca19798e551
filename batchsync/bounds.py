"""The bounds of every number a user gives, defined once for the command, the API and the admin.

The services check them (`check`), so nothing out of range reaches the database, whichever way
it came in; the API's serializer and the admin's form take the same limits (`limits`) so they
refuse early and the OpenAPI schema shows them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TypedDict

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest


class Limits(TypedDict):
    """A bound as DRF serializer and Django form fields take it."""

    min_value: int
    max_value: int


@dataclass(frozen=True)
class Bound:
    """An inclusive range of whole numbers for the input named `field`."""

    field: str
    low: int
    high: int

    def check(self, value: int) -> int:
        """Return `value`, or raise `InvalidJobRequest` naming the field and the range."""
        if not self.low <= value <= self.high:
            raise InvalidJobRequest(
                self.field,
                _("%(field)s must be between %(low)s and %(high)s")
                % {"field": self.field, "low": self.low, "high": self.high},
            )
        return value

    @property
    def limits(self) -> Limits:
        """`min_value` and `max_value` for a DRF serializer or Django form field."""
        return Limits(min_value=self.low, max_value=self.high)


# Days of a job loaded at once (threads, or cluster workers); also BATCHSYNC DEFAULT_PARALLELISM.
PARALLELISM = Bound("parallelism", 1, 64)
# Queue order, higher first; well inside the database's smallint.
PRIORITY = Bound("priority", -1000, 1000)
# Trading days before the newest loaded one that a `--latest` run reloads (BATCHSYNC LATEST_LOOKBACK_DAYS).
LOOKBACK_DAYS = Bound("lookback_days", 0, 250)
# Jobs in one listing: `batch_sync list --limit`, and a page of the API (`page_size`).
LIST_LIMIT = Bound("limit", 1, 500)
PAGE_SIZE = replace(LIST_LIMIT, field="page_size")
# Days one re-run may list (the API's `days`): a 20-year job's every day.
RERUN_DAYS_MAX = 20 * 366
# Alert delivery (BATCHSYNC ALERT_*): retries of one delivery, and one attempt's timeout in
# seconds, so that a delivery never takes more than minutes.
ALERT_RETRIES = Bound("alert_retries", 0, 10)
ALERT_TIMEOUT_MAX = 60.0


def date_range_check(start_date: dt.date, end_date: dt.date, *, today: dt.date, max_days: int) -> None:
    """A job's range: not reversed, not past today, at most `max_days` (BATCHSYNC MAX_RANGE_DAYS)."""
    if start_date > end_date:
        raise InvalidJobRequest("end_date", _("end_date must not be before start_date"))
    if end_date > today:
        raise InvalidJobRequest(
            "end_date", _("end_date must not be in the future (today is %(today)s)") % {"today": today}
        )
    span = (end_date - start_date).days + 1
    if span > max_days:
        raise InvalidJobRequest(
            "end_date",
            _("The range is %(span)s days; at most %(max)s days are allowed")
            % {"span": span, "max": max_days},
        )
