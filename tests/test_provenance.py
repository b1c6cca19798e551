"""Provenance of loaded days: the checksum, the source fingerprint, and "loaded from another source"."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from batchsync import loader, services
from batchsync.models import LoadedDay, SkipReason, SyncDay, SyncDayStatus, SyncJob, SyncJobStatus
from batchsync.sources.base import CsvPayload
from batchsync.sources.demo import demo_day_csv
from batchsync.sources.latency import LatencySource
from tests.factories import SyncJobFactory

SEP_1, SEP_2 = dt.date(2025, 9, 1), dt.date(2025, 9, 2)
RANGE = ("--start", "2025-09-01", "--end", "2025-09-02")


def _load(day: dt.date, csv: bytes, source: str = "csv") -> services.DayProvenance:
    """Load `csv` as `day`'s rows and record its provenance, in one transaction as the runner does."""
    job = SyncJobFactory.create(source=source, start_date=day, end_date=day, status=SyncJobStatus.SUCCEEDED)
    with transaction.atomic(), connection.cursor() as cursor:
        loader.replace_day(cursor, day, CsvPayload(chunks=[csv], origin="test"))
        return services.loaded_day_record(day, services.DayOrigin(source, "f", job.pk))


def _reordered(csv: bytes) -> bytes:
    header, *rows = csv.decode().strip().split("\n")
    return ("\n".join([header, *reversed(rows)]) + "\n").encode()


@pytest.mark.django_db
def test_checksum_is_the_same_for_the_same_rows_in_another_order_and_changes_with_one_value() -> None:
    csv = demo_day_csv(SEP_1)
    first = _load(SEP_1, csv)
    again = _load(SEP_1, _reordered(csv))
    assert first == again
    assert first.rows == 5500 and len(first.checksum) == 32
    header, row, *rest = csv.decode().split("\n")
    fields = row.split(",")
    fields[5] = f"{float(fields[5]) + 0.01:.2f}"  # one close, one cent higher
    changed = _load(SEP_1, "\n".join([header, ",".join(fields), *rest]).encode())
    assert changed.rows == 5500 and changed.checksum != first.checksum
    assert LoadedDay.objects.get(trade_date=SEP_1).checksum == changed.checksum


def test_fingerprint_leaves_out_secrets_and_options_that_do_not_shape_the_rows() -> None:
    base = services.source_options_fingerprint({"path": "/data"})
    assert services.source_options_fingerprint({"path": "/data", "token": "abc", "db_password": "x"}) == base
    assert services.source_options_fingerprint({"path": "/other"}) != base
    slow = services.source_options_fingerprint({"seconds": 5}, LatencySource.options_unfingerprinted)
    assert slow == services.source_options_fingerprint({}, LatencySource.options_unfingerprinted)


def _command(*args: str) -> str:
    out = io.StringIO()
    try:
        call_command("batch_sync", *args, stdout=out)
    except SystemExit as exited:
        assert exited.code in (0, None), out.getvalue()
    return out.getvalue()


def _provenance() -> dict[dt.date, tuple[str, int, str, str]]:
    return {
        day.trade_date: (day.source, day.rows, day.checksum, day.job.task_id if day.job else "")
        for day in LoadedDay.objects.select_related("job")
    }


@pytest.fixture
def demo_then_csv_dir(csv_dir: Path) -> Path:
    """The quick start (demo over two trading days), and a csv folder of the same days."""
    _command("run", *RANGE)
    for day in (SEP_1, SEP_2):
        (csv_dir / f"{day}.csv").write_bytes(demo_day_csv(day))
    return csv_dir


@pytest.mark.django_db(transaction=True)
def test_csv_after_the_quick_start_is_planned_as_loaded_from_demo_and_force_replaces_it(
    demo_then_csv_dir: Path,
) -> None:
    demo = _provenance()
    assert {source for source, *_ in demo.values()} == {"demo"} and set(demo) == {SEP_1, SEP_2}
    csv = ("--source", "csv", "--path", str(demo_then_csv_dir))

    plan = _command("plan", *RANGE, *csv).splitlines()
    assert plan[:2] == ["2025-09-01  skip  loaded from demo", "2025-09-02  skip  loaded from demo"]
    note = "(2 days loaded from another source were skipped; force replaces them)"
    assert f"0 to load, 2 skipped {note}" in plan[2]

    ran = _command("run", *RANGE, *csv)  # without --force: nothing replaced, and it says why
    assert "(2 days loaded from another source were skipped; force replaces them)" in ran
    skipped = SyncJob.objects.order_by("-id").first()
    assert skipped is not None and skipped.status == SyncJobStatus.SUCCEEDED
    assert SyncDay.objects.filter(job=skipped, skip_reason=SkipReason.LOADED_OTHER_SOURCE).count() == 2
    assert _provenance() == demo
    assert "skipped_other_source   2" in _command("status", skipped.task_id)

    _command("run", *RANGE, *csv, "--force")
    forced = SyncJob.objects.order_by("-id").first()
    assert forced is not None and forced.success_days == 2
    after = _provenance()
    assert {day: (source, job) for day, (source, _, _, job) in after.items()} == {
        SEP_1: ("csv", forced.task_id),
        SEP_2: ("csv", forced.task_id),
    }
    # The same rows from another source: the same checksums.
    assert {day: value[1:3] for day, value in after.items()} == {
        day: value[1:3] for day, value in demo.items()
    }
    status = _command("status", forced.task_id)
    assert "sources                csv 2" in status
    assert _command("plan", *RANGE, *csv).splitlines()[0] == "2025-09-01  skip  already_loaded"


@pytest.mark.django_db(transaction=True)
def test_a_failed_day_leaves_the_previous_provenance_and_rows(demo_then_csv_dir: Path) -> None:
    before = _provenance()
    (demo_then_csv_dir / "2025-09-02.csv").write_text("ts_code,trade_date,open\n600000.SH,20250902,x\n")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "batch_sync", "run", *RANGE, "--source", "csv", "--path", str(demo_then_csv_dir), "--force",
            stdout=out,
        )  # fmt: skip
    assert exited.value.code == 1
    after = _provenance()
    assert after[SEP_2] == before[SEP_2]  # rolled back: still demo's rows, demo's record
    assert after[SEP_1][0] == "csv"
    assert SyncDay.objects.filter(date=SEP_2, status=SyncDayStatus.FAILED).exists()


def _api_days(client: APIClient, task_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/sync-status/sync/batch/{task_id}/days")
    results: list[dict[str, Any]] = response.json()["data"]["results"]
    return results


@pytest.mark.django_db(transaction=True)
def test_api_days_and_admin_show_the_provenance(demo_then_csv_dir: Path, admin_client: Client) -> None:
    _command("run", *RANGE, "--source", "csv", "--path", str(demo_then_csv_dir), "--force")
    job = SyncJob.objects.order_by("-id").first()
    assert job is not None
    api = APIClient()
    api.force_authenticate(admin_client.get("/admin/").wsgi_request.user)
    days = {day["date"]: day for day in _api_days(api, job.task_id)}
    loaded = LoadedDay.objects.get(trade_date=SEP_1)
    assert days["2025-09-01"]["loaded_source"] == "csv"
    assert days["2025-09-01"]["loaded_rows"] == 5500
    assert days["2025-09-01"]["loaded_checksum"] == loaded.checksum
    assert days["2025-09-01"]["loaded_by_job"] == job.task_id
    assert days["2025-09-01"]["loaded_at"] is not None

    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = admin_client.get("/admin/batchsync/loadedday/").content.decode()
    assert loaded.checksum in html and job.task_id in html and ">csv<" in html
    assert admin_client.get(f"/admin/batchsync/loadedday/{loaded.pk}/change/").status_code == 200
    page = admin_client.get(f"/admin/batchsync/syncjob/{job.pk}/change/").content.decode()
    assert re.search(r'id="bs-loaded-sources"><a href="[^"]+">csv 2</a>', page)

    _command("run", *RANGE)  # demo again, without force: both days were loaded from csv
    skipped = SyncJob.objects.order_by("-id").first()
    assert skipped is not None
    page = admin_client.get(f"/admin/batchsync/syncjob/{skipped.pk}/change/").content.decode()
    assert '<dd data-field="skipped_other_source">2</dd>' in page
    progress = api.get(f"/api/v1/sync-status/sync/batch/progress/{skipped.task_id}").json()["data"]
    assert progress["skipped_other_source"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_day_leaves_the_previous_provenance() -> None:
    before = _load(SEP_1, demo_day_csv(SEP_1), source="demo")
    job = SyncJobFactory.create(source="csv", status=SyncJobStatus.SUCCEEDED)
    with pytest.raises(RuntimeError), transaction.atomic(), connection.cursor() as cursor:
        fewer = b"\n".join(demo_day_csv(SEP_1).split(b"\n")[:101]) + b"\n"  # header + 100 bars
        assert loader.replace_day(cursor, SEP_1, CsvPayload(chunks=[fewer], origin="t")) == 100
        services.loaded_day_record(SEP_1, services.DayOrigin("csv", "f", job.pk))
        raise RuntimeError("the mark failed")  # e.g. the fence: the whole day rolls back
    loaded = LoadedDay.objects.get(trade_date=SEP_1)
    assert (loaded.source, loaded.rows, loaded.checksum) == ("demo", before.rows, before.checksum)
