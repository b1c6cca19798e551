"""Typed view of `settings.BATCHSYNC`: every tunable of batchsync in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings

from batchsync.backoff import doubling
from batchsync.bounds import ALERT_RETRIES, ALERT_TIMEOUT_MAX, PARALLELISM


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


# The data checks run over every loaded day (docs/checks.md): name -> (severity, tolerance).
# Severity `error` fails the day (rolled back), `warn` loads it and stores a finding, `off`
# skips the check. Tolerances: absolute for change (price units) and pct_chg (percentage
# points), a fraction for the implied average price and the row-count band.
DATA_CHECK_DEFAULTS: dict[str, tuple[str, float]] = {
    "ts_code_format": ("error", 0.0),
    "duplicate_ts_code": ("error", 0.0),
    "high_low_range": ("error", 0.0),
    "price_positive": ("error", 0.0),
    "vol_amount_nonnegative": ("error", 0.0),
    "change_consistency": ("error", 0.005),
    "pct_chg_consistency": ("error", 0.01),
    "pre_close_continuity": ("warn", 0.0),
    "row_count_band": ("warn", 0.1),
    "implied_price_range": ("warn", 0.01),
}
CHECK_SEVERITIES = ("error", "warn", "off")
# A-share codes; the checks test this one without a regular expression (sql.DATA_CHECK_CONDITIONS).
DEFAULT_TS_CODE_PATTERN = r"^[0-9]{6}\.(SH|SZ|BJ)$"


def data_checks_parse(value: str | Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """Every check's (severity, tolerance): the defaults with the overrides given.

    Overrides are `name=severity[:tolerance],...` (the environment variable), or a mapping of
    name to `severity[:tolerance]`, a tolerance, `(severity, tolerance)` (what this returns, so
    the environment's parsed value parses again) or `{"severity": ..., "tolerance": ...}`.
    """
    if isinstance(value, str):
        pairs = (entry.partition("=") for entry in value.split(",") if entry.strip())
        items: dict[str, Any] = {name.strip(): text for name, _, text in pairs}
    else:
        items = dict(value)
    checks = dict(DATA_CHECK_DEFAULTS)
    for name, given in items.items():
        if name not in DATA_CHECK_DEFAULTS:
            raise ValueError(
                f"Unknown data check {name!r} in BATCHSYNC CHECKS (known: {', '.join(DATA_CHECK_DEFAULTS)})"
            )
        rule: Mapping[str, Any]
        if isinstance(given, Mapping):
            rule = given
        elif isinstance(given, tuple | list) and len(given) == 2:  # already parsed (the environment's)
            rule = {"severity": given[0], "tolerance": given[1]}
        elif isinstance(given, int | float):
            rule = {"tolerance": given}
        else:  # "severity[:tolerance]"
            level, _, amount = str(given).strip().partition(":")
            rule = {"severity": level or None, "tolerance": amount or None}
        severity = str(rule.get("severity") or checks[name][0]).strip().lower()
        if severity not in CHECK_SEVERITIES:
            raise ValueError(
                f"BATCHSYNC CHECKS {name}: severity must be error, warn or off, not {severity!r}"
            )
        try:
            given_tolerance: Any = rule.get("tolerance")
            tolerance = float(checks[name][1] if given_tolerance is None else given_tolerance)
        except (TypeError, ValueError):
            raise ValueError(f"BATCHSYNC CHECKS {name}: the tolerance must be a number") from None
        if not tolerance >= 0:
            raise ValueError(f"BATCHSYNC CHECKS {name}: the tolerance must be 0 or more")
        checks[name] = (severity, tolerance)
    return checks


def publication_times_parse(value: str | Mapping[str, str]) -> dict[str, str]:
    """Per-source publication times from a mapping, or from `name=HH:MM,...` (environment)."""
    if isinstance(value, Mapping):
        return {str(name): str(time) for name, time in value.items()}
    pairs = (entry.partition("=")[::2] for entry in value.split(",") if entry.strip())
    return {name.strip(): time.strip() for name, time in pairs}


def addresses_parse(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """E-mail addresses from a list, or from one comma-separated string."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())


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

    checks: dict[str, tuple[str, float]] = _setting(
        lambda: dict(DATA_CHECK_DEFAULTS),
        "BATCHSYNC_CHECKS",
        "data checks over every loaded day: overrides of their severity (error, warn, off) and "
        "tolerance, `name=severity[:tolerance],...`; the checks and defaults: docs/checks.md",
        parse=data_checks_parse,
    )
    ts_code_pattern: str = _setting(
        DEFAULT_TS_CODE_PATTERN,
        "BATCHSYNC_TS_CODE_PATTERN",
        "PostgreSQL regular expression every ts_code must match (the `ts_code_format` check)",
    )
    exchange_timezone: str = _setting(
        "Asia/Shanghai",
        "BATCHSYNC_EXCHANGE_TIMEZONE",
        "time zone of the calendar's exchange: schedules' cron expressions and publication times are in it",
    )
    publication_time: str = _setting(
        "17:00",
        "BATCHSYNC_PUBLICATION_TIME",
        "time (HH:MM, exchange time zone) after which a source's bars of the day count as published "
        "(`--latest`, schedules)",
    )
    publication_times: dict[str, str] = _setting(
        lambda: {"tushare": "17:00"},
        "BATCHSYNC_PUBLICATION_TIMES",
        "per-source publication times overriding `PUBLICATION_TIME`, `name=HH:MM,...`",
        parse=publication_times_parse,
    )
    latest_lookback_days: int = _setting(
        0,
        "BATCHSYNC_LATEST_LOOKBACK_DAYS",
        "trading days before the newest loaded one that `--latest` reloads (forced) with new days, "
        "to catch late vendor corrections",
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

    # Alerts (docs/alerts.md): where they go, how hard delivery tries, when a stall is one.
    alert_emails: tuple[str, ...] = _setting(
        (),
        "BATCHSYNC_ALERT_EMAILS",
        "addresses alerts are mailed to through Django's mail settings, comma-separated; unset: no mail",
        parse=addresses_parse,
    )
    alert_webhook_url: str = _setting(
        "", "BATCHSYNC_ALERT_WEBHOOK_URL", "URL alerts are POSTed to as signed JSON; unset: no webhook"
    )
    alert_webhook_secret: str = _setting(
        "",
        "BATCHSYNC_ALERT_WEBHOOK_SECRET",
        "HMAC-SHA256 key of the webhook's `X-Batchsync-Signature` header; required with the URL",
    )
    alert_timeout_seconds: float = _setting(
        10.0,
        "BATCHSYNC_ALERT_TIMEOUT",
        f"timeout of one delivery attempt (SMTP or webhook), in seconds, at most {ALERT_TIMEOUT_MAX:g}",
    )
    alert_retries: int = _setting(
        3, "BATCHSYNC_ALERT_RETRIES", f"retries of a failed delivery, at most {ALERT_RETRIES.high}"
    )
    alert_retry_backoff_seconds: float = _setting(
        2.0, "BATCHSYNC_ALERT_RETRY_BACKOFF", "first backoff of those retries, in seconds (doubling)"
    )
    alert_retry_backoff_max_seconds: float = _setting(
        30.0, "BATCHSYNC_ALERT_RETRY_BACKOFF_MAX", "cap of the doubling delivery backoff, in seconds"
    )
    alert_stalled_recoveries: int = _setting(
        3,
        "BATCHSYNC_ALERT_STALLED_RECOVERIES",
        "a job the reaper recovered this many times raises a `job_stalled` alert",
    )

    @classmethod
    def from_django(cls) -> BatchSyncSettings:
        raw: dict[str, Any] = dict(getattr(settings, "BATCHSYNC", {}))
        known = {f.upper(): f for f in cls.__dataclass_fields__}
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"Unknown BATCHSYNC settings: {', '.join(sorted(unknown))}")
        values = {known[key]: value for key, value in raw.items()}
        if "publication_times" in values:
            values["publication_times"] = publication_times_parse(values["publication_times"])
        if "file_roots" in values:
            values["file_roots"] = file_roots_parse(values["file_roots"])
        if "checks" in values:
            values["checks"] = data_checks_parse(values["checks"])
        if "alert_emails" in values:
            values["alert_emails"] = addresses_parse(values["alert_emails"])
        config = cls(**values)
        config.alert_settings_check()
        if not PARALLELISM.low <= config.default_parallelism <= PARALLELISM.high:
            raise ValueError(
                f"BATCHSYNC DEFAULT_PARALLELISM must be between {PARALLELISM.low} and {PARALLELISM.high}"
            )
        return config

    def alert_settings_check(self) -> None:
        """Refuse an unsigned webhook and unbounded deliveries (docs/alerts.md)."""
        if self.alert_webhook_url and not self.alert_webhook_secret:
            raise ValueError("BATCHSYNC ALERT_WEBHOOK_URL needs ALERT_WEBHOOK_SECRET (the HMAC key)")
        if self.alert_webhook_url and not self.alert_webhook_url.startswith(("http://", "https://")):
            raise ValueError("BATCHSYNC ALERT_WEBHOOK_URL must be an http:// or https:// URL")
        if not 0 < self.alert_timeout_seconds <= ALERT_TIMEOUT_MAX:
            raise ValueError(f"BATCHSYNC ALERT_TIMEOUT must be above 0 and at most {ALERT_TIMEOUT_MAX:g}")
        if not ALERT_RETRIES.low <= self.alert_retries <= ALERT_RETRIES.high:
            raise ValueError(
                f"BATCHSYNC ALERT_RETRIES must be between {ALERT_RETRIES.low} and {ALERT_RETRIES.high}"
            )

    @property
    def alert_delivery_bound_seconds(self) -> float:
        """The longest one delivery may take: every attempt's timeout plus the backoffs between."""
        waits = sum(
            doubling(self.alert_retry_backoff_seconds, retry, self.alert_retry_backoff_max_seconds)
            for retry in range(1, self.alert_retries + 1)
        )
        return (self.alert_retries + 1) * self.alert_timeout_seconds + waits


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
    computed = {
        "sources": ", ".join(BUILT_IN_SOURCES),
        "default_parallelism": "one per CPU, at most 4",
        "checks": "every check at its default severity (docs/checks.md)",
        "publication_times": "tushare=17:00",
    }
    rows = ["| variable | `BATCHSYNC` key | meaning | default |", "| --- | --- | --- | --- |"]
    for spec in fields(BatchSyncSettings):
        default = computed.get(spec.name, spec.default)
        # A `|` in a table cell ends it, even in code: escaped (the ts_code pattern has some).
        shown = "unset" if default in ((), "") else f"`{default}`".replace("|", "\\|")
        env, meaning = spec.metadata["env"], spec.metadata["meaning"]
        rows.append(f"| `{env}` | `{spec.name.upper()}` | {meaning} | {shown} |")
    return "\n".join(rows)


def get_settings() -> BatchSyncSettings:
    """Read the settings now (not at import), so tests can override them."""
    return BatchSyncSettings.from_django()


if __name__ == "__main__":  # python -m batchsync.conf: the table for docs/configuration.md
    print(configuration_table())
