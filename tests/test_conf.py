"""The typed settings: defaults, overrides and the checks on them."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

from batchsync.conf import BatchSyncSettings, cpu_parallelism, get_settings


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
