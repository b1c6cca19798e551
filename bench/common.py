"""Pieces both benchmarks use: their own database, the XSHG days, the demo CSV files, the machine."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

LAST_DAY = dt.date(2025, 12, 31)


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def recreate_database(server_url: str, name: str, *, drop_only: bool = False) -> None:
    """Drop (and unless `drop_only`, create) database `name`, connecting through `server_url`."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def bench_database(script: str, name: str) -> tuple[str, str]:
    """Check DATABASE_URL, (re)create database `name` on its server; return (server URL, bench URL)."""
    server_url = os.environ.get("DATABASE_URL", "").strip()
    if not server_url:
        sys.exit(f"{script} needs DATABASE_URL (a PostgreSQL server; it creates its own database)")
    if urlsplit(server_url).path.strip("/") == name:
        sys.exit(f"point DATABASE_URL at another database of the server; {name} is dropped here")
    recreate_database(server_url, name)
    return server_url, with_database(server_url, name)


def bench_django(script: str, name: str) -> str:
    """A fresh bench database `name`, Django set up on it, migrated, the calendar stored; its URL."""
    _, url = bench_database(script, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncproject.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    calendar_store()
    return url


def trading_days(count: int) -> list[dt.date]:
    """The last `count` XSHG sessions up to LAST_DAY (straight from exchange_calendars)."""
    from batchsync import calendars

    return [day for day in calendars.exchange_sessions("XSHG") if day <= LAST_DAY][-count:]


def calendar_store() -> None:
    """Store the trading calendar in the bench database, as a user's first run does once.

    After that a run reads it from the database; storing it first makes every timed run a
    user's everyday run, not the one after an install or an exchange_calendars upgrade.
    """
    from batchsync import calendars
    from batchsync.conf import get_settings

    calendars.calendar_bounds(get_settings().calendar)


def generate_files(days: list[dt.date], directory: Path) -> int:
    """One demo CSV per day, `YYYYMMDD.csv`; files already there are reused. Returns files made."""
    from batchsync.sources.demo import demo_day_csv

    directory.mkdir(parents=True, exist_ok=True)
    made = 0
    for day in days:
        path = directory / f"{day:%Y%m%d}.csv"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(demo_day_csv(day))
            tmp.replace(path)
            made += 1
    return made


def machine() -> str:
    """CPUs, memory, Python and PostgreSQL of this run (Django must be set up)."""
    from django.db import connection

    cpu = platform.processor() or platform.machine()
    memory = "unknown RAM"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{memory_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server,) = cursor.fetchone()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory}, Python {platform.python_version()}, "
        f"PostgreSQL {server}, {platform.system()} {platform.release()}"
    )
