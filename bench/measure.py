"""Measuring the benches: a run's result, the server's CPU seconds, the best of runs, a clean table."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    note: str = ""
    cpu_seconds: float | None = None  # client process + server backends

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def rows_per_cpu_second(self) -> float | None:
        return self.rows / self.cpu_seconds if self.cpu_seconds else None


class ServerCpu:
    """CPU seconds used by the bench database's server processes while the block runs.

    Samples pg_stat_activity and /proc/<pid>/stat (utime + stime) every 50 ms from its own
    connection, so backends that come and go (psql's, the command's) are counted too; only the
    last few ms of a backend that exits are missed. Works when the server runs on this machine;
    `seconds` is None otherwise. Used because wall clock on a shared machine is noisy.
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, url: str) -> None:
        self.url = url
        self.baseline: dict[int, int] = {}
        self.latest: dict[int, int] = {}
        self.local = True
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seconds: float | None = None

    @staticmethod
    def _ticks(pid: int) -> int | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)

    def _sample(self, cursor: Any, into: dict[int, int]) -> None:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        for (pid,) in cursor.fetchall():
            ticks = self._ticks(pid)
            if ticks is not None:  # None: it exited between the query and the read
                into[pid] = max(ticks, into.get(pid, 0))

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (own,) = cursor.fetchone() or (0,)
            try:  # the server's processes are visible here only if it runs on this machine
                self.local = b"postgres" in Path(f"/proc/{own}/cmdline").read_bytes()
            except OSError:
                self.local = False
            self._sample(cursor, self.baseline)
            self.latest.update(self.baseline)
            self.ready.set()
            while not self.stopped.wait(0.05):
                self._sample(cursor, self.latest)
            self._sample(cursor, self.latest)

    def __enter__(self) -> ServerCpu:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()
        if self.local and self.latest:
            used = sum(ticks - self.baseline.get(pid, 0) for pid, ticks in self.latest.items())
            self.seconds = used / self.TICK


def best_of(runs: list[Result], name: str = "") -> Result:
    """The fastest run by wall clock, with the least CPU of all runs, and every run's time."""
    best = min(runs, key=lambda run: run.seconds)
    spread = ", ".join(f"{run.seconds:.2f}" for run in runs)
    cpus = [run.cpu_seconds for run in runs if run.cpu_seconds is not None]
    return Result(
        name or best.name,
        best.rows,
        best.seconds,
        f"{best.note}; runs: {spread} s" if best.note else f"runs: {spread} s",
        min(cpus) if cpus else None,
    )


def checkpoint() -> None:
    """Flush dirty pages so the next measurement does not pay for the previous one."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def truncate_bars() -> None:
    """Empty `daily_bar` (no dead rows left behind) and checkpoint."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE daily_bar")
    checkpoint()
