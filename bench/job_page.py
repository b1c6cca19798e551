"""The job page of a 20-year job: server time and size of the page and of its fragments.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/job_page.py --years 20

On its own database `batchsync_bench_job_page` (dropped and created here): one job of `--years`
years (7,305 days for 20) with mixed day states built by `tests.factories.long_job_create` (bulk
inserts, not run), the page requested as a superuser through Django's test client. Prints the
median server time of each request (best of `--repeat`) and the size of its HTML.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, machine

DATABASE = "batchsync_bench_job_page"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    bench_django(__file__, DATABASE)
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from tests.factories import long_job_create

    job = long_job_create(args.years)
    User.objects.create_superuser("bench", "bench@example.com", "bench-pw")
    client = Client(HTTP_ACCEPT_LANGUAGE="en", SERVER_NAME="localhost")
    client.login(username="bench", password="bench-pw")
    page = reverse("admin:batchsync_syncjob_change", args=[job.pk])
    live = reverse("admin:batchsync_syncjob_live", args=[job.pk])
    since = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    failed = job.days.filter(status="failed").order_by("date").values_list("date", flat=True)[3]
    month_url = reverse("admin:batchsync_syncjob_month", args=[job.pk])
    day_url = reverse("admin:batchsync_syncjob_day", args=[job.pk])
    requests = {
        "job page": (page, {}),
        "live refresh": (live, {"since": since, "open": f"{failed:%Y-%m}"}),
        "month fragment": (month_url, {"month": f"{failed:%Y-%m}"}),
        "day fragment": (day_url, {"date": failed.isoformat()}),
    }
    print(f"{job.total_days} days ({args.years} years), {job.errors.count()} errors; {machine()}")
    for name, (url, params) in requests.items():
        timings = []
        size = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(url, params)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, (name, response.status_code)
            size = len(response.content)
        median, best = statistics.median(timings) * 1000, min(timings) * 1000
        print(f"{name:15} median {median:6.1f} ms  best {best:6.1f} ms  {size / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
