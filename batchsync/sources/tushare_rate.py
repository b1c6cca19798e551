"""One rate limit for tushare calls, shared through PostgreSQL by every worker of every machine.

Calls are spaced evenly (a slot every 60/limit seconds, 2 % wider as a margin for network
jitter) rather than let through in bursts: no minute window of the vendor's can then see more
than the limit, and the achieved rate stays about 0.98 of it.
"""

from __future__ import annotations

import hashlib
import time

from django.db import connection

from batchsync import sql
from batchsync.conf import get_settings

JITTER_MARGIN = 1.02


def tushare_limit_key(token: str, url: str) -> str:
    """The limit's row: one per token and endpoint (the vendor counts per token); never the token itself."""
    return hashlib.sha256(f"{url}\n{token}".encode()).hexdigest()[:32]


def tushare_call_slot_take(key: str) -> float:
    """Take the next call slot of `key` and sleep until it; return the seconds slept.

    Must run outside a transaction (the runner fetches before the day's transaction), so the
    row lock is released at once.
    """
    spacing = 60.0 / max(1, get_settings().tushare_calls_per_minute) * JITTER_MARGIN
    with connection.cursor() as cursor:
        cursor.execute(sql.TUSHARE_CALL_SLOT_TAKE, {"key": key, "spacing": spacing})
        row = cursor.fetchone()
    wait = max(0.0, float(row[0])) if row else 0.0
    if wait:
        time.sleep(wait)
    return wait
