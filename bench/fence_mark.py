"""Per-day cost of the fence check and of marking a day done, without the COPY between them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/fence_mark.py --days 240

On its own database `batchsync_bench_fence` (dropped and created here): one job over the last
`--days` XSHG sessions; each day is claimed, then its transaction runs only the fence
(`services.sync_day_lock_for_commit`) and the mark (`services.sync_day_mark_succeeded`), as
`runner._load_claimed_day` does around the COPY. Prints the median and p90 of that
transaction per day, in microseconds (best of `--repeat` runs; the machine may be shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django, trading_days

DATABASE = "batchsync_bench_fence"


def run_once(days: int) -> list[float]:
    """Claim every day of a new job and time its fence + mark transaction; return seconds per day."""
    from django.db import transaction

    from batchsync import dispatch, services

    sessions = trading_days(days)
    request = services.JobRequest(sessions[0], sessions[-1], "demo", {}, reprocess="all", parallelism=1)
    with dispatch.handoff(foreground=True):
        job = services.sync_job_create(request)
    fence = services.sync_job_join(job.pk, "bench-worker")
    assert fence is not None
    timings: list[float] = []
    while (
        claim := services.sync_day_claim(job.pk, "bench-worker", fence, publish_progress=False)
    ) is not None:
        started = time.perf_counter()
        with transaction.atomic():
            services.sync_day_lock_for_commit(claim, "bench-worker", fence)
            services.sync_day_mark_succeeded(claim, 5500, time.monotonic())
        timings.append(time.perf_counter() - started)
    services.sync_job_finish_if_done(job.pk)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_django("bench/fence_mark.py", DATABASE)
    runs = [run_once(args.days) for _ in range(args.repeat)]
    best = min(runs, key=statistics.median)
    deciles = statistics.quantiles(best, n=10)
    print(
        f"fence + mark per day ({len(best)} days, best of {args.repeat}): "
        f"median {statistics.median(best) * 1e6:.0f} us, p90 {deciles[-1] * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
