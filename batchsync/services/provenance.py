"""Provenance of loaded days: which source (and which of its options) and job loaded each day."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from batchsync import sql

# Option names that hold secrets: never part of a fingerprint (nor anything else stored).
SECRET_OPTION = re.compile(r"token|password|passwd|secret|api_key|credential", re.IGNORECASE)


def source_options_fingerprint(options: Mapping[str, Any], unfingerprinted: Collection[str] = ()) -> str:
    """sha256 of the options that shape the rows: all but secrets and the source's `unfingerprinted`."""
    kept = {
        name: value
        for name, value in options.items()
        if name not in unfingerprinted and not SECRET_OPTION.search(name)
    }
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class DayOrigin:
    """Who loads a job's days: the source, the fingerprint of its options, the job."""

    source: str
    fingerprint: str
    job_id: int


@dataclass(frozen=True)
class DayProvenance:
    rows: int
    checksum: str


def loaded_day_record(
    day: dt.date, origin: DayOrigin, *, previous_checksum: str | None = None
) -> DayProvenance:
    """Record what `daily_bar` now holds for `day` (call in the day's transaction, after its COPY).

    `previous_checksum`: which rows of the previous trading day the day's checks compared with
    (`DayCheck.previous_checksum`; None: none).
    """
    params: dict[str, Any] = {
        "day": day,
        "previous_checksum": previous_checksum,
        "source": origin.source,
        "fingerprint": origin.fingerprint,
        "job": origin.job_id,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql.LOADED_DAY_RECORD, params)
        rows, checksum = cursor.fetchone()
    return DayProvenance(rows=rows, checksum=checksum)
