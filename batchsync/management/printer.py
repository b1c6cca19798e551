"""The foreground command's progress display: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading

from django.core.management.base import OutputWrapper
from django.utils import timezone

from batchsync.models import SyncJob


class ProgressPrinter:
    """A live one-line progress bar on a terminal; plain lines when output is not a terminal.

    The bar is redrawn in place (carriage return) each time a day is claimed or done; the
    plain form prints one line per finished day, fit for logs and pipes.
    """

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.Lock()
        self.last_line = ""
        self.last_processed: int | None = None

    def __call__(self, job: SyncJob) -> None:
        eta = (
            timezone.localtime(job.estimated_completion).strftime("%H:%M:%S")
            if job.estimated_completion
            else "-"
        )
        current = job.current_date.isoformat() if job.current_date else "-"
        if self.tty:
            filled = int(job.progress_percent / 5)
            bar = "#" * filled + "-" * (20 - filled)
            line = (
                f"\r[{bar}] {job.progress_percent:5.1f}% {current} "
                f"ok {job.success_days} failed {job.failed_days} skipped {job.skipped_days} ETA {eta}\033[K"
            )
        else:
            if job.processed_days == self.last_processed:
                return  # a day was claimed, not finished: nothing new for a log
            self.last_processed = job.processed_days
            line = (
                f"[{job.processed_days}/{job.total_days}] {job.progress_percent:.1f}% current={current} "
                f"ok={job.success_days} failed={job.failed_days} skipped={job.skipped_days} eta={eta}\n"
            )
        with self.lock:
            if line != self.last_line:
                self.out.write(line, ending="")
                self.out.flush()
                self.last_line = line

    def finish(self) -> None:
        if self.tty and self.last_line:
            self.out.write("")
