"""Riding out a lost database: reconnect with a capped backoff for the outage window, or give up.

Shared by the runner's workers (their claims, loads and bookkeeping) and the foreground
command's main thread (its finish). A restart or failover takes seconds to minutes; a worker
that gave up at the first refused connection would leave its job for somebody else to notice.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from batchsync import sql
from batchsync.backoff import doubling, retrying
from batchsync.conf import get_settings
from batchsync.exceptions import DatabaseUnavailable
from batchsync.logs import Shown, log_event, seconds

logger = logging.getLogger("batchsync.runner")

T = TypeVar("T")

# A lost connection surfaces as Django's wrappers, or as psycopg's own errors from COPY.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def reconnect() -> None:
    with contextlib.suppress(DatabaseError):
        connection.close()


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__


def await_database(worker_id: str, outage_started: float, error: BaseException) -> int:
    """Reconnect until the database answers again (return the failed attempts), or raise.

    A restart or a failover takes seconds to minutes: the worker tries again after 1, 2, 4 ...
    seconds (`SOURCE_RETRY_BACKOFF_SECONDS`, doubling, at most `RECONNECT_BACKOFF_MAX_SECONDS`)
    with a log line per attempt, for up to `OUTAGE_SECONDS` since the connection was lost.
    Then it gives up with `DatabaseUnavailable`: nothing of the day in flight was committed,
    and the job is left for a rerun (or `resume`) to take over.
    """
    config = get_settings()

    def wait(error: BaseException, attempts: int) -> float:
        reconnect()
        waited = time.monotonic() - outage_started
        if waited >= config.outage_seconds:
            raise DatabaseUnavailable(
                f"the database was unreachable for {waited:.0f}s "
                f"(BATCHSYNC_OUTAGE_SECONDS={config.outage_seconds:g}): {first_line(error)}"
            ) from error
        delay = min(
            doubling(config.source_retry_backoff_seconds, attempts + 1, config.reconnect_backoff_max_seconds),
            max(config.outage_seconds - waited, 0.0),
        )
        log_event(
            logger,
            "db_reconnect",
            level=logging.WARNING,
            worker=worker_id,
            attempt=attempts + 1,
            delay=seconds(delay),
            outage=Shown(waited, f"{waited:.1f}s/{config.outage_seconds:g}s"),
            error=first_line(error),
        )
        return delay

    def ping(attempt: int) -> int:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute(sql.PING)
        log_event(
            logger,
            "db_reconnected",
            level=logging.WARNING,
            worker=worker_id,
            attempt=attempt,
            outage=seconds(time.monotonic() - outage_started),
        )
        return attempt - 1

    return retrying(ping, retry_on=CONNECTION_ERRORS, wait=wait, failed_with=error)


def with_reconnect(func: Callable[..., T], *args: Any, log_as: str = "-", **kwargs: Any) -> T:
    """Call a short, idempotent service, riding out a database outage (see `await_database`)."""
    outage_started: float | None = None
    immediate = 0  # errors while the database answered at once: not an outage, so bounded

    def wait(error: BaseException, attempts: int) -> float:
        nonlocal outage_started, immediate
        outage_started = outage_started or time.monotonic()
        if await_database(log_as, outage_started, error) == 0:  # it waited for the database
            immediate += 1
            if immediate > get_settings().source_retries:
                raise error
        return 0.0

    return retrying(lambda attempt: func(*args, **kwargs), retry_on=CONNECTION_ERRORS, wait=wait)
