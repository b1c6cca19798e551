"""The typed settings: defaults, overrides and the checks on them."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest
from django.test import override_settings

from batchsync.conf import (
    BUILT_IN_SOURCES,
    BatchSyncSettings,
    configuration_table,
    cpu_parallelism,
    environ_overrides,
    get_settings,
)


def test_default_parallelism_is_one_worker_per_cpu_at_most_four(monkeypatch: pytest.MonkeyPatch) -> None:
    for cpus, expected in [(None, 1), (1, 1), (2, 2), (3, 3), (4, 4), (16, 4)]:
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        assert cpu_parallelism() == expected
        assert BatchSyncSettings().default_parallelism == expected


def test_default_parallelism_can_be_set_and_is_checked(settings: object) -> None:
    with override_settings(BATCHSYNC={"DEFAULT_PARALLELISM": 3}):
        assert get_settings().default_parallelism == 3
    for bad in (0, 65):
        with (
            override_settings(BATCHSYNC={"DEFAULT_PARALLELISM": bad}),
            pytest.raises(ValueError, match="DEFAULT_PARALLELISM must be between 1 and 64"),
        ):
            get_settings()


def test_unknown_settings_are_refused() -> None:
    with (
        override_settings(BATCHSYNC={"PARALELLISM": 2}),
        pytest.raises(ValueError, match="Unknown BATCHSYNC settings: PARALELLISM"),
    ):
        get_settings()


def test_environment_variables_arrive_typed_and_unset_ones_keep_the_defaults() -> None:
    overrides = environ_overrides(
        {
            "BATCHSYNC_LEASE_SECONDS": "5",
            "BATCHSYNC_MAX_DAY_ATTEMPTS": "7",
            "BATCHSYNC_FILE_ROOTS": "/srv/a:/srv/b,/srv/c",
            "BATCHSYNC_EXTRA_SOURCES": "latency=batchsync.sources.latency.LatencySource",
            "BATCHSYNC_CALENDAR": "  ",
        }
    )
    assert overrides == {
        "LEASE_SECONDS": 5.0,
        "MAX_DAY_ATTEMPTS": 7,
        "FILE_ROOTS": ("/srv/a", "/srv/b", "/srv/c"),
        "SOURCES": {**BUILT_IN_SOURCES, "latency": "batchsync.sources.latency.LatencySource"},
    }
    with override_settings(BATCHSYNC=overrides):
        config = get_settings()
    assert (config.lease_seconds, config.calendar, config.max_range_days) == (5.0, "XSHG", 20 * 366)
    assert environ_overrides({}) == {}


def test_every_parsed_variable_from_the_environment_is_accepted_by_the_settings() -> None:
    """`settings.BATCHSYNC` holds the environment's parsed values; reading them parses them again."""
    overrides = environ_overrides(
        {
            "BATCHSYNC_CHECKS": "ts_code_format=off,implied_price_range=warn:0.02,pre_close_continuity=off",
            "BATCHSYNC_PUBLICATION_TIMES": "tushare=18:30",
            "BATCHSYNC_FILE_ROOTS": "/srv/a",
            "BATCHSYNC_ALERT_EMAILS": "ops@example.com, quant@example.com",
        }
    )
    with override_settings(BATCHSYNC=overrides):
        config = get_settings()
    assert config.checks["ts_code_format"] == ("off", 0.0)
    assert config.checks["implied_price_range"] == ("warn", 0.02)
    assert config.checks["pre_close_continuity"] == ("off", 0.0)
    assert config.checks["high_low_range"] == ("error", 0.0)
    assert config.publication_times == {"tushare": "18:30"}
    assert config.file_roots == ("/srv/a",)
    assert config.alert_emails == ("ops@example.com", "quant@example.com")


def test_every_setting_has_a_variable_and_the_docs_table_is_the_generated_one() -> None:
    """Defaults are defined once (conf.py); docs/configuration.md shows exactly what it generates."""
    specs = fields(BatchSyncSettings)
    assert len({spec.metadata["env"] for spec in specs}) == len(specs)
    assert all(spec.metadata["meaning"] for spec in specs)
    manual = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    generated = manual.split("<!-- BEGIN GENERATED: python -m batchsync.conf -->\n", 1)[1]
    assert generated.split("\n<!-- END GENERATED -->", 1)[0] == configuration_table()
