import datetime as dt

import pytest

from batchsync import runner, services
from batchsync.models import DailyBar, SyncDayStatus, SyncJobStatus


@pytest.mark.django_db(transaction=True)
def test_national_day_range_loads_one_trading_day_and_skips_eight():
    request = services.JobRequest(
        start_date=dt.date(2025, 10, 1), end_date=dt.date(2025, 10, 9), source="demo", source_options={}
    )
    job = services.sync_job_create(request, enqueue=None)
    outcome = runner.sync_job_run(job.pk)
    job = outcome.job
    assert job.status == SyncJobStatus.SUCCEEDED
    assert (job.total_days, job.success_days, job.skipped_days, job.failed_days) == (9, 1, 8, 0)
    assert DailyBar.objects.filter(trade_date=dt.date(2025, 10, 9)).count() == 5500
    assert job.days.get(date=dt.date(2025, 10, 9)).status == SyncDayStatus.SUCCEEDED
    assert job.message.startswith("批量同步完成: 成功1, 失败0, 跳过8") or "1 succeeded" in job.message
