"""The one rule that maps a job's outcome to the command's exit status, and its documented table."""

from __future__ import annotations

import re

import pytest

from batchsync.management.exit_status import EXIT_STATUSES, job_exit_status
from batchsync.models import SyncJobStatus
from tests.conftest import PROJECT_DIR
from tests.factories import SyncJobFactory

S = SyncJobStatus


@pytest.mark.parametrize(
    ("status", "failed_days", "stopped_by", "sole_runner", "expected"),
    [
        (S.SUCCEEDED, 0, None, True, 0),
        (S.SUCCEEDED, 2, None, True, 1),  # a day failed: 1 even if the job counts as done
        (S.FAILED, 0, None, True, 1),
        (S.CANCELLED, 0, None, True, 130),
        (S.PAUSED, 0, None, True, 130),
        (S.CANCELLED, 1, None, True, 1),  # failed days outrank the stop
        (S.RUNNING, 0, None, True, 75),  # the workers stopped, the job did not end
        (S.PENDING, 0, None, True, 75),
        (S.SUCCEEDED, 0, "the database was unreachable for 300s", True, 75),
        # `work`: one more worker of a job others may still run
        (S.RUNNING, 1, None, False, 0),
        (S.FAILED, 1, None, False, 1),
        (S.PAUSED, 0, None, False, 130),
        (S.RUNNING, 0, "the database was unreachable for 300s", False, 75),
    ],
)
def test_a_jobs_outcome_maps_to_one_exit_status(
    status: str, failed_days: int, stopped_by: str | None, sole_runner: bool, expected: int
) -> None:
    job = SyncJobFactory.build(status=status, failed_days=failed_days)
    assert job_exit_status(job, stopped_by=stopped_by, sole_runner=sole_runner) == expected


def test_the_manual_table_lists_exactly_the_exit_statuses() -> None:
    manual = (PROJECT_DIR / "docs" / "command-line.md").read_text()
    section = manual.split("**Exit status**", 1)[1].split("\n\n**", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, flags=re.MULTILINE)}
    assert documented == set(EXIT_STATUSES)
