"""What PostgreSQL knows of the workers' sessions: which workers are alive, which wait on a lock.

Workers name their database sessions after their worker id (`application_name`, set by
`runner._tag_connection`), so `pg_stat_activity` and `pg_locks` tell, without any heartbeat,
whether a worker still has a session (a `kill -9` ends them at once) and whether the session
loading a day waits on a lock another session holds (a `LOCK TABLE daily_bar` left open in a
psql, a long migration). Reads only. Seeing other roles' sessions needs the same role or
`pg_read_all_stats`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db import DatabaseError, connection

from batchsync import sql
from batchsync.conf import get_settings
from batchsync.logs import Shown, log_event, seconds
from batchsync.models import SyncDayStatus

logger = logging.getLogger("batchsync.runner")


def session_name(worker_id: str) -> str:
    """The `application_name` of a worker's sessions (PostgreSQL keeps 63 characters)."""
    return worker_id[:63]


def sync_workers_alive(worker_ids: Iterable[str]) -> set[str]:
    """The workers among `worker_ids` that have a database session open right now."""
    names = {session_name(worker) for worker in worker_ids if worker}
    if not names:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(sql.FRESH_STATS)
        cursor.execute(
            sql.SESSIONS_ALIVE,
            [sorted(names)],
        )
        alive = {row[0] for row in cursor.fetchall()}
    return {worker for worker in worker_ids if worker and session_name(worker) in alive}


@dataclass(frozen=True)
class Blocker:
    """A session holding the lock a worker waits for."""

    pid: int
    application_name: str
    state: str
    transaction_seconds: float | None  # how long its transaction has been open

    def describe(self) -> str:
        facts = [self.application_name or "no application name", self.state or "state unknown"]
        if self.transaction_seconds is not None:
            facts.append(f"transaction open {self.transaction_seconds:.0f} s")
        return f"pid {self.pid} ({', '.join(facts)})"


@dataclass(frozen=True)
class LockWait:
    """A running day whose worker session waits on a lock held by other sessions."""

    date: dt.date
    worker_id: str
    pid: int
    waiting_seconds: float
    lock: str  # the mode asked for and on what: "RowExclusiveLock on daily_bar"
    blockers: list[Blocker]

    @property
    def blocking_pids(self) -> list[int]:
        return [blocker.pid for blocker in self.blockers]

    def describe(self) -> str:
        """One line for the command's status and the log."""
        held_by = ", ".join(blocker.describe() for blocker in self.blockers) or "another session"
        return (
            f"{self.date} waits {self.waiting_seconds:.1f} s for {self.lock} held by {held_by} "
            f"(worker {self.worker_id}, pid {self.pid})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The API's shape (see `LockWaitOutputSerializer`)."""
        return {**asdict(self), "blocking_pids": self.blocking_pids}


def _lock_waits(scope: str, params: dict[str, Any]) -> list[LockWait]:
    with connection.cursor() as cursor:
        cursor.execute(sql.FRESH_STATS)
        cursor.execute(sql.LOCK_WAITS.format(scope=scope), {"running": SyncDayStatus.RUNNING, **params})
        rows = cursor.fetchall()
    waits = []
    for date, worker_id, pid, waited, lock, blockers in rows:
        waits.append(
            LockWait(
                date=date,
                worker_id=worker_id,
                pid=pid,
                waiting_seconds=round(float(waited), 1),
                lock=lock,
                blockers=[
                    Blocker(
                        pid=b["pid"],
                        application_name=b["application_name"] or "",
                        state=b["state"] or "",
                        transaction_seconds=(
                            round(float(b["transaction_seconds"]), 1)
                            if b["transaction_seconds"] is not None
                            else None
                        ),
                    )
                    for b in blockers
                ],
            )
        )
    return waits


def sync_job_lock_waits(job_id: int) -> list[LockWait]:
    """The job's running days whose worker waits on a lock held by another session."""
    return _lock_waits("day.job_id = %(job)s", {"job": job_id})


def sync_worker_lock_waits(worker_ids: Iterable[str]) -> list[LockWait]:
    """The same, for the days these workers are loading (whatever their job)."""
    return _lock_waits("day.worker_id = ANY(%(workers)s)", {"workers": sorted(set(worker_ids))})


class LockWaitWatch(threading.Thread):
    """Logs, while it lasts, every wait of this process's workers on another session's lock.

    One thread (and one database session) per process, whatever its number of workers; it
    asks every few seconds (a third of the lease, 0.5 to 5 s) and only while workers run.
    """

    _instance: LockWaitWatch | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        super().__init__(name="batchsync-lock-watch", daemon=True)
        self.workers: set[str] = set()
        self.changed = threading.Condition()

    @classmethod
    def watch(cls, worker_id: str) -> None:
        """Start logging this worker's lock waits (until `unwatch`)."""
        with cls._guard:
            if cls._instance is None or not cls._instance.is_alive():
                cls._instance = cls()
                cls._instance.start()
            instance = cls._instance
        with instance.changed:
            instance.workers.add(worker_id)
            instance.changed.notify()

    @classmethod
    def unwatch(cls, worker_id: str) -> None:
        instance = cls._instance
        if instance is not None:
            with instance.changed:
                instance.workers.discard(worker_id)

    def run(self) -> None:
        while True:
            with self.changed:
                while not self.workers:
                    connection.close()  # no session held while no worker runs here
                    self.changed.wait()
                workers = set(self.workers)
            interval = min(max(get_settings().lease_seconds / 3.0, 0.5), 5.0)
            try:
                waits = [w for w in sync_worker_lock_waits(workers) if w.waiting_seconds >= interval]
                for wait in waits:
                    log_event(
                        logger,
                        "lock_wait",
                        level=logging.WARNING,
                        worker=wait.worker_id,
                        date=wait.date,
                        pid=wait.pid,
                        waited=seconds(wait.waiting_seconds),
                        lock=Shown(wait.lock, repr(wait.lock)),
                        blocked_by=",".join(map(str, wait.blocking_pids)) or "-",
                        detail=Shown(wait.describe(), f"| {wait.describe()}", bare=True),
                    )
            except DatabaseError:
                connection.close()  # the database is away: the workers say so themselves
            with self.changed:
                self.changed.wait(interval)
