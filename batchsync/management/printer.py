"""The foreground command's progress display: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import OutputWrapper
from django.utils import timezone

from batchsync.models import SyncJob

# tqdm draws the bar over the days to load (skipped days apart); the job's counts and its ETA
# (from the service's rule) follow it.
BAR_FORMAT = "{percentage:5.1f}% |{bar:20}| {n}/{total} loaded {desc}"


class _TerminalStream:
    """The command's stdout as tqdm writes to it: text as given, no line ending added."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class ProgressPrinter:
    """A live progress bar (tqdm) on a terminal; one plain line per finished day otherwise.

    The bar is redrawn in place each time a day is claimed or done; the plain form, fit for
    logs and pipes, prints a line only when a day is finished. Called from the worker threads.
    """

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.RLock()  # finish() may run in a thread a Ctrl-C cut short in _draw
        self.finished = False
        self.bar: Any = None  # tqdm, imported on a terminal only (start-up time of the rest)
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
            counts = f"failed {job.failed_days} skipped {job.skipped_days}"
            with self.lock:
                self._draw(job, f"{current} {counts} ETA {eta}")
            return
        if job.processed_days == self.last_processed:
            return  # a day was claimed, not finished: nothing new for a log
        self.last_processed = job.processed_days
        line = (
            f"[{job.days_loaded}/{job.days_to_load} loaded] {job.load_percent:.1f}% current={current} "
            f"failed={job.failed_days} skipped={job.skipped_days} eta={eta}\n"
        )
        with self.lock:
            if line != self.last_line:
                self.out.write(line, ending="")
                self.out.flush()
                self.last_line = line

    def _draw(self, job: SyncJob, status: str) -> None:
        if self.finished:
            return  # a worker thread still going after an abort: the summary is on screen
        if self.bar is None:
            from tqdm import tqdm

            tqdm.monitor_interval = 0  # no monitor thread: the bar is redrawn on each change
            self.bar = tqdm(
                total=max(job.days_to_load, 1),
                initial=job.days_loaded,
                desc=status,
                file=_TerminalStream(self.out),
                bar_format=BAR_FORMAT,
                ascii=" #",
                dynamic_ncols=False,
            )  # drawn once here
            return
        self.bar.n = job.days_loaded
        self.bar.set_description_str(status, refresh=False)
        self.bar.refresh()

    def finish(self) -> None:
        """End the bar's line (the summary starts on a new one); the bar stays on screen."""
        with self.lock:
            self.finished = True
            if self.bar is not None:
                self.bar.close()
                self.bar = None
