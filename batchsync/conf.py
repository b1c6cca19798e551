"""Typed view of `settings.BATCHSYNC`: every tunable of batchsync in one place."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class BatchSyncSettings:
    """The runtime settings of batchsync, with their defaults."""

    default_source: str = "demo"
    sources: dict[str, str] = field(
        default_factory=lambda: {
            "demo": "batchsync.sources.demo.DemoSource",
            "csv": "batchsync.sources.csv.CsvDirectorySource",
        }
    )
    calendar: str = "XSHG"
    default_parallelism: int = field(default_factory=cpu_parallelism)
    lease_seconds: float = 60.0
    task_slice_seconds: float = 600.0
    max_day_attempts: int = 3
    source_retries: int = 3
    source_retry_backoff_seconds: float = 1.0
    # A worker that loses the database keeps reconnecting this long (a restart or failover),
    # waiting twice as long after each failed attempt, up to the cap; then it stops cleanly.
    outage_seconds: float = 300.0
    reconnect_backoff_max_seconds: float = 10.0
    max_range_days: int = 20 * 366
    recent_errors: int = 10
    # Directories file sources may read when a job comes through the API or the admin (the
    # command line, run by a local operator, may use any path). Empty: file sources are refused there.
    file_roots: tuple[str, ...] = ()

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


def get_settings() -> BatchSyncSettings:
    """Read the settings now (not at import), so tests can override them."""
    return BatchSyncSettings.from_django()
