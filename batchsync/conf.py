"""Typed view of `settings.BATCHSYNC`: every tunable of batchsync in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings

from batchsync.bounds import PARALLELISM


def cpu_parallelism() -> int:
    """Days in flight by default: one per CPU of this machine, at most 4.

    COPY is CPU-bound on both ends; with two days in flight one day's bookkeeping and reading
    overlap the other's COPY (1.5-1.8x on 2 CPUs, docs/benchmarks.md). Beyond 4 a shared server
    gains little and its other users lose more, as pgloader's default of 4 workers reflects.
    """
    return max(1, min(4, os.cpu_count() or 1))


def file_roots_parse(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Roots from a list, or from one string separated by os.pathsep (":" on POSIX) or commas."""
    items = re.split(f"[,{re.escape(os.pathsep)}]", value) if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())


BUILT_IN_SOURCES = {
    "demo": "batchsync.sources.demo.DemoSource",
    "csv": "batchsync.sources.csv.CsvDirectorySource",
    "tushare": "batchsync.sources.tushare.TushareSource",
    "parquet": "batchsync.sources.parquet.ParquetSource",
    "postgres": "batchsync.sources.postgres.PostgresSource",
}


def extra_sources_parse(value: str) -> dict[str, str]:
    """The built-in sources plus `name=dotted.path.Class,...` from BATCHSYNC_EXTRA_SOURCES."""
    extra = dict(entry.partition("=")[::2] for entry in value.split(",") if entry.strip())
    return {**BUILT_IN_SOURCES, **{name.strip(): path.strip() for name, path in extra.items()}}


def _setting(default: Any, env: str, meaning: str, *, parse: Callable[[str], Any] | None = None) -> Any:
    """A field with its default, the environment variable that sets it and what it means (docs)."""
    metadata = {"env": env, "meaning": meaning, "parse": parse}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class BatchSyncSettings:
    """The runtime settings of batchsync: the one place their defaults are defined.

    `syncproject/settings.py` passes on only the environment variables that are set
    (`environ_overrides`); docs/configuration.md's table is generated from these fields
    (`python -m batchsync.conf`, checked by tests/test_conf.py).
    """

    default_source: str = _setting("demo", "BATCHSYNC_DEFAULT_SOURCE", "source used when none is given")
    sources: dict[str, str] = _setting(
        lambda: dict(BUILT_IN_SOURCES),
        "BATCHSYNC_EXTRA_SOURCES",
        "extra sources beside the built-in ones, `name=dotted.path.Class,...`",
        parse=extra_sources_parse,
    )
    calendar: str = _setting(
        "XSHG",
        "BATCHSYNC_CALENDAR",
        "exchange_calendars calendar of trading days; stored in the database on first use, and "
        "again after an exchange_calendars upgrade",
    )
    default_parallelism: int = _setting(
        cpu_parallelism,
        "BATCHSYNC_DEFAULT_PARALLELISM",
        f"days in flight for a job that does not give `parallelism` (command, API, admin), "
        f"{PARALLELISM.low}-{PARALLELISM.high}",
    )
    lease_seconds: float = _setting(
        60.0, "BATCHSYNC_LEASE_SECONDS", "worker lease: a worker silent this long is treated as dead"
    )
    task_slice_seconds: float = _setting(
        600.0, "BATCHSYNC_TASK_SLICE_SECONDS", "how long one cluster task works before handing the job on"
    )
    max_day_attempts: int = _setting(
        3, "BATCHSYNC_MAX_DAY_ATTEMPTS", "a day that keeps killing its worker fails after this many attempts"
    )
    source_retries: int = _setting(
        3, "BATCHSYNC_SOURCE_RETRIES", "retries of transient source or connection errors per day"
    )
    source_retry_backoff_seconds: float = _setting(
        1.0, "BATCHSYNC_SOURCE_RETRY_BACKOFF", "first backoff of those retries, in seconds (doubling)"
    )
    # A worker that loses the database keeps reconnecting this long (a restart or failover),
    # waiting twice as long after each failed attempt, up to the cap; then it stops cleanly.
    outage_seconds: float = _setting(
        300.0,
        "BATCHSYNC_OUTAGE_SECONDS",
        "how long a worker keeps reconnecting to a database that went away (restart, failover), in "
        "seconds; then it stops and the job stays resumable (exit 75)",
    )
    reconnect_backoff_max_seconds: float = _setting(
        10.0, "BATCHSYNC_RECONNECT_BACKOFF_MAX", "cap of the doubling reconnect backoff, in seconds"
    )
    max_range_days: int = _setting(
        20 * 366, "BATCHSYNC_MAX_RANGE_DAYS", "longest range a job may cover, in days (20 years)"
    )
    recent_errors: int = _setting(
        10, "BATCHSYNC_RECENT_ERRORS", "errors shown with a job's progress (the seed's `errors` list)"
    )
    # Directories file sources may read when a job comes through the API or the admin (the
    # command line, run by a local operator, may use any path). Empty: file sources are refused there.
    file_roots: tuple[str, ...] = _setting(
        (),
        "BATCHSYNC_FILE_ROOTS",
        "directories file sources (csv) may read for jobs started through the API or the admin, "
        "`:`- or comma-separated; unset: only the command line may use file sources (docs/api.md)",
        parse=file_roots_parse,
    )
    events_heartbeat_seconds: float = _setting(
        15.0,
        "BATCHSYNC_EVENTS_HEARTBEAT",
        "seconds between the comment lines an idle event stream sends (keeps proxies from closing it)",
    )
    events_retry_ms: int = _setting(
        3000,
        "BATCHSYNC_EVENTS_RETRY_MS",
        "the `retry:` hint of event streams: a client reconnects after this many ms",
    )

    tushare_api_url: str = _setting(
        "http://api.waditu.com/dataapi",
        "TUSHARE_API_URL",
        "the tushare pro endpoint the tushare source POSTs to (the token comes from `TUSHARE_TOKEN`)",
    )
    tushare_calls_per_minute: int = _setting(
        500,
        "TUSHARE_CALLS_PER_MINUTE",
        "calls per minute to tushare shared by every worker of every machine (through PostgreSQL)",
    )

    @classmethod
    def from_django(cls) -> BatchSyncSettings:
        raw: dict[str, Any] = dict(getattr(settings, "BATCHSYNC", {}))
        known = {f.upper(): f for f in cls.__dataclass_fields__}
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"Unknown BATCHSYNC settings: {', '.join(sorted(unknown))}")
        values = {known[key]: value for key, value in raw.items()}
        if "file_roots" in values:
            values["file_roots"] = file_roots_parse(values["file_roots"])
        config = cls(**values)
        if not PARALLELISM.low <= config.default_parallelism <= PARALLELISM.high:
            raise ValueError(
                f"BATCHSYNC DEFAULT_PARALLELISM must be between {PARALLELISM.low} and {PARALLELISM.high}"
            )
        return config


def environ_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`settings.BATCHSYNC` from the environment: only the variables that are set (typed)."""
    environ = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    for spec in fields(BatchSyncSettings):
        raw = environ.get(spec.metadata["env"], "").strip()
        if raw:
            parse = spec.metadata["parse"] or _TYPES[str(spec.type)]
            overrides[spec.name.upper()] = parse(raw)
    return overrides


_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}


def configuration_table() -> str:
    """The Markdown table of docs/configuration.md: every setting, its variable, meaning and default."""
    computed = {"sources": ", ".join(BUILT_IN_SOURCES), "default_parallelism": "one per CPU, at most 4"}
    rows = ["| variable | `BATCHSYNC` key | meaning | default |", "| --- | --- | --- | --- |"]
    for spec in fields(BatchSyncSettings):
        default = computed.get(spec.name, spec.default)
        shown = "unset" if default in ((), "") else f"`{default}`"
        env, meaning = spec.metadata["env"], spec.metadata["meaning"]
        rows.append(f"| `{env}` | `{spec.name.upper()}` | {meaning} | {shown} |")
    return "\n".join(rows)


def get_settings() -> BatchSyncSettings:
    """Read the settings now (not at import), so tests can override them."""
    return BatchSyncSettings.from_django()


if __name__ == "__main__":  # python -m batchsync.conf: the table for docs/configuration.md
    print(configuration_table())
