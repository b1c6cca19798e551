"""Typed view of `settings.BATCHSYNC`: every tunable of batchsync in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


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
    lease_seconds: float = 60.0
    task_slice_seconds: float = 600.0
    max_day_attempts: int = 3
    source_retries: int = 3
    source_retry_backoff_seconds: float = 1.0
    max_range_days: int = 20 * 366
    recent_errors: int = 10

    @classmethod
    def from_django(cls) -> BatchSyncSettings:
        raw: dict[str, Any] = dict(getattr(settings, "BATCHSYNC", {}))
        known = {f.upper(): f for f in cls.__dataclass_fields__}
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"Unknown BATCHSYNC settings: {', '.join(sorted(unknown))}")
        return cls(**{known[key]: value for key, value in raw.items()})


def get_settings() -> BatchSyncSettings:
    """Read the settings now (not at import), so tests can override them."""
    return BatchSyncSettings.from_django()
