"""A directory of one tushare `daily` CSV per trading day (`YYYY-MM-DD.csv` or `YYYYMMDD.csv`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.sources.base import CsvPayload, Source

CHUNK_BYTES = 1 << 20


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


class CsvDirectorySource(Source):
    """Reads `<path>/<date>.csv`; a trading day without a file is a failed day."""

    name = "csv"

    def __init__(self, path: str | Path | None = None, **options: Any) -> None:
        super().__init__(path=str(path) if path else "", **options)
        self.path = Path(path) if path else None

    def validate(self) -> None:
        if self.path is None:
            raise InvalidJobRequest("path", _("The csv source needs a directory path"))
        if not self.path.is_dir():
            raise InvalidJobRequest("path", _("Directory not found: %(path)s") % {"path": self.path})

    def day_file(self, day: dt.date) -> Path | None:
        """The file holding `day`, in either accepted name form, or None."""
        assert self.path is not None
        for name in (f"{day.isoformat()}.csv", f"{day.strftime('%Y%m%d')}.csv"):
            candidate = self.path / name
            if candidate.is_file():
                return candidate
        return None

    def fetch_day(self, day: dt.date) -> CsvPayload:
        self.validate()
        path = self.day_file(day)
        if path is None:
            assert self.path is not None
            expected = self.path / f"{day.isoformat()}.csv"
            raise SourceError(
                _("missing file: %(file)s (or %(alt)s)")
                % {"file": expected, "alt": f"{day.strftime('%Y%m%d')}.csv"},
                file=str(expected),
            )
        return CsvPayload(chunks=_file_chunks(path), origin=str(path), path=path)
