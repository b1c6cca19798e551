"""Server paths given through the API or the admin stay under BATCHSYNC_FILE_ROOTS.

A user who may start jobs must not make the server read any directory it can (`/etc`,
`../../..`, a symlink out of a data directory): a path option is resolved (symlinks and `..`
followed) and accepted only inside a configured root; the job keeps the resolved path. The
command line, run by a local operator, does not call this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from batchsync.conf import get_settings
from batchsync.exceptions import InvalidJobRequest
from batchsync.sources import source_class_get, source_options_check


def file_roots() -> list[Path]:
    """The configured roots, resolved (a root that is itself a symlink counts as its target)."""
    return [Path(root).expanduser().resolve() for root in get_settings().file_roots]


def _confined(option: str, value: str, roots: list[Path]) -> str:
    try:
        resolved = Path(value).resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of symlinks, a NUL byte, ...
        resolved = None
    if resolved is None or not any(resolved.is_relative_to(root) for root in roots):
        raise InvalidJobRequest(
            option,
            _("%(path)s is outside the directories this server reads files from (BATCHSYNC_FILE_ROOTS)")
            % {"path": value[:200]},
        )
    return str(resolved)


def source_options_confined(source: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` with every path option resolved; refused when outside the roots or when none are set."""
    source_options_check(source, options)
    taken = source_class_get(source).options_taken or {}
    paths = [name for name, spec in taken.items() if spec.is_path and name in options]
    if not paths:
        return options
    roots = file_roots()
    if not roots:
        raise InvalidJobRequest(
            paths[0],
            _(
                "The %(source)s source reads files of the server, which this server allows only from "
                "the command line (no BATCHSYNC_FILE_ROOTS is configured)"
            )
            % {"source": source},
        )
    return {**options, **{name: _confined(name, str(options[name]), roots) for name in paths}}
