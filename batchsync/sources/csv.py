"""A directory of one tushare `daily` CSV per trading day (`YYYY-MM-DD.csv` or `YYYYMMDD.csv`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from django.utils.translation import gettext as _

from batchsync.exceptions import InvalidJobRequest, SourceError
from batchsync.sources.base import CsvPayload, FileSource

CHUNK_BYTES = 1 << 20


def day_file_names(day: dt.date) -> tuple[str, str]:
    """The two accepted names of `day`'s file: `YYYY-MM-DD.csv` and `YYYYMMDD.csv`."""
    return f"{day.isoformat()}.csv", f"{day.strftime('%Y%m%d')}.csv"


def _file_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes in 1 MiB chunks; a read failure is a (permanent) `SourceError`."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
    except OSError as error:
        raise SourceError(
            _("cannot read %(file)s: %(reason)s") % {"file": path, "reason": error.strerror or error},
            file=str(path),
        ) from error


class CsvDirectorySource(FileSource):
    """Reads `<path>/<date>.csv`; a trading day without a file is a failed day ("missing file")."""

    name = "csv"

    def validate(self) -> None:
        if self.path is None:
            raise InvalidJobRequest("path", _("The csv source needs a directory path (--path DIR)"))
        try:
            found = self.path.is_dir()
            not_a_directory = not found and self.path.exists()
        except OSError as error:  # e.g. ENAMETOOLONG: a path no directory can have
            raise InvalidJobRequest(
                "path", _("Unusable directory path: %(reason)s") % {"reason": error.strerror or error}
            ) from None
        if not_a_directory:
            raise InvalidJobRequest("path", _("Not a directory: %(path)s") % {"path": self.path})
        if not found:
            raise InvalidJobRequest("path", _("Directory not found: %(path)s") % {"path": self.path})

    def day_file(self, day: dt.date) -> Path | None:
        """The file holding `day` in either accepted name form; None when there is none.

        Both forms present is an error rather than a silent pick: they may differ.
        """
        directory = self._directory()
        found = [directory / name for name in day_file_names(day) if (directory / name).is_file()]
        if len(found) > 1:
            raise SourceError(
                _("two files for %(day)s: %(first)s and %(second)s; keep only one")
                % {"day": day.isoformat(), "first": found[0], "second": found[1].name},
                file=str(found[0]),
            )
        return found[0] if found else None

    def fetch_day(self, day: dt.date) -> CsvPayload:
        path = self.day_file(day)
        if path is None:
            iso_name, compact_name = day_file_names(day)
            expected = self._directory() / iso_name
            raise SourceError(
                _("missing file: %(file)s (or %(alt)s) for trading day %(day)s")
                % {"file": expected, "alt": compact_name, "day": day.isoformat()},
                file=str(expected),
            )
        return CsvPayload(chunks=_file_chunks(path), origin=str(path), path=path)

    def _directory(self) -> Path:
        self.validate()
        assert self.path is not None
        return self.path
